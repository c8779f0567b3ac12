//! Fair admission: one tenant may run at most `max_instances_per_tenant` requests at
//! once, so a tenant flooding the server with slow requests fills its own share, gets
//! `503 overloaded` (with `Retry-After`) past it, and another tenant still gets in.

use std::time::Duration;

use crate::harness::{Server, eventually, expect_error, guest};
use crate::limits::with_query;
use crate::platform_module::HELLO;

#[test]
fn a_tenant_over_its_share_is_refused_while_another_tenant_gets_in() {
    let server = Server::start_with_config(
        "max_instances = 16\nmax_instances_per_tenant = 2\nadmission_queue_ms = 100\n",
    );
    let (_, greedy) = server.create_customer("greedy");
    let (_, modest) = server.create_customer("modest");
    assert_eq!(
        server.upload(&greedy, "slow", &guest("limits")).status(),
        201
    );
    assert_eq!(
        server.upload(&modest, "hello", &guest("hello")).status(),
        201
    );

    let slow = server.url(&with_query("/dispatch/slow/sleep", &[("ms", "4000")]));
    let running: Vec<_> = (0..2)
        .map(|_| {
            let url = slow.clone();
            std::thread::spawn(move || reqwest::blocking::get(url).unwrap().status().as_u16())
        })
        .collect();
    // Both places taken: the next request of the same tenant is refused...
    assert!(eventually(Duration::from_secs(5), || {
        server.get("/dispatch/slow/sleep?ms=1").status() == 503
    }));
    let refused = server.get("/dispatch/slow/sleep?ms=1");
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(refused, 503, "overloaded");
    // ...while another tenant is served at once.
    for _ in 0..5 {
        let response = server.get("/dispatch/hello/");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().unwrap(), HELLO);
    }
    for run in running {
        assert_eq!(run.join().unwrap(), 200);
    }
    // Its runs over, the tenant gets in again.
    assert_eq!(server.get("/dispatch/slow/sleep?ms=1").status(), 200);
    assert!(server.metric("dispatcher_requests_total{outcome=\"overloaded\"}") >= 2);
}
