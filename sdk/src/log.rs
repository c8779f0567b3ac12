//! Logging to the script's captured log (the same place as stdout and stderr) through the
//! `platform:worker/log` import: the functions [`debug`], [`info`], [`warn`] and [`error`],
//! and the `format!`-style macros [`console_debug!`](crate::console_debug),
//! [`console_log!`](crate::console_log), [`console_warn!`](crate::console_warn) and
//! [`console_error!`](crate::console_error).
//!
//! ```ignore
//! sdk::log::info("cache warmed");
//! sdk::console_warn!("slow backend: {} ms", elapsed);
//! ```

use crate::bindings::log::{Level, log};

/// Logs `message` at the debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs `message` at the info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs `message` at the warning level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs `message` at the error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}

/// Logs a `format!`-style message at the debug level.
#[macro_export]
macro_rules! console_debug {
    ($($arg:tt)*) => {
        $crate::log::debug(::std::format!($($arg)*))
    };
}

/// Logs a `format!`-style message at the info level.
#[macro_export]
macro_rules! console_log {
    ($($arg:tt)*) => {
        $crate::log::info(::std::format!($($arg)*))
    };
}

/// Logs a `format!`-style message at the warning level.
#[macro_export]
macro_rules! console_warn {
    ($($arg:tt)*) => {
        $crate::log::warn(::std::format!($($arg)*))
    };
}

/// Logs a `format!`-style message at the error level.
#[macro_export]
macro_rules! console_error {
    ($($arg:tt)*) => {
        $crate::log::error(::std::format!($($arg)*))
    };
}
