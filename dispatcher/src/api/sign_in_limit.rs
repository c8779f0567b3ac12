//! The gateway's limit on sign-in attempts per client address. Signing up and logging in
//! each make `auth` compute an Argon2 hash (tens of milliseconds of CPU), so one client
//! could otherwise buy a lot of the platform's CPU, or spread password guesses over many
//! accounts. Each address gets `sign_in_attempts_per_minute` attempts (0: no limit) in
//! a burst, refilled evenly over the minute; past that the gateway answers
//! `429 rate_limited` with `Retry-After` and `auth` never runs. An IPv6 client is
//! counted by its /64, the block one host usually holds.
//!
//! `auth` also limits attempts per account (`examples/platform/auth/src/throttle.rs`),
//! which holds however many addresses a guesser has.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::Method;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_address::counted_as;

/// The routes that check a password.
const SIGN_IN_ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/auth/login"),
    (Method::POST, "/auth/signup"),
];

pub struct SignInLimit {
    /// `None` when the limit is off.
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl SignInLimit {
    pub fn new(per_minute: u32) -> SignInLimit {
        SignInLimit {
            limiter: NonZeroU32::new(per_minute)
                .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute))),
        }
    }

    /// Whether a request to `path` with `method` is a sign-in attempt.
    pub fn applies_to(method: &Method, path: &str) -> bool {
        SIGN_IN_ROUTES
            .iter()
            .any(|(route_method, route)| method == route_method && path == *route)
    }

    /// Counts one attempt from `client`; past the limit, how long until the next is
    /// allowed.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&counted_as(client))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Drops the addresses whose allowance is full again, so memory follows the clients
    /// of the last minute, not every client ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
