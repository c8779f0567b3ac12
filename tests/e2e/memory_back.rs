//! Memory given back: after runs that grow to their memory limit, the server's idle
//! resident memory returns close to where it was before them (a freed instance slot's
//! pages are decommitted at once), and what the instance pool keeps resident in unused
//! slots is small and shown in `/metrics`.

use std::time::Duration;

use crate::harness::{Server, eventually, guest};

/// Far below what 20 memories of 100 MiB left resident before (over 1 GiB), far above
/// what a server's RSS moves on its own.
const BOUND_MIB: u64 = 256;

#[test]
fn idle_memory_returns_after_runs_that_grow_to_their_limit() {
    let server = Server::start();
    let (_, token) = server.create_customer("grower");
    assert_eq!(server.upload(&token, "app", &guest("limits")).status(), 201);
    // CPU to spare: the runs must reach their memory, not stop at the CPU limit first.
    let set = [
        "limits",
        "set",
        "app",
        "--memory-mb",
        "120",
        "--cpu-ms",
        "1000",
    ];
    let out = server.cli(&set);
    assert!(out.status.success(), "{out:?}");
    // 121 MiB fit in the default 128 MiB, not in the 120 MiB just set.
    assert!(
        eventually(Duration::from_secs(5), || {
            let answer = server.get("/dispatch/app/grow-many?mb=121");
            answer.text().unwrap().contains("exceeded_memory")
        }),
        "the new limits apply"
    );
    let baseline = server.rss_mib();

    for _ in 0..20 {
        let grown = server.get("/dispatch/app/grow-many?mb=100");
        let status = grown.status();
        assert_eq!(status, 200, "{}", grown.text().unwrap());
    }
    let mut after = 0;
    assert!(
        eventually(Duration::from_secs(10), || {
            after = server.rss_mib();
            after <= baseline + BOUND_MIB
        }),
        "idle RSS {after} MiB, baseline {baseline} MiB"
    );
    let kept = server.metric("dispatcher_pool_idle_resident_bytes");
    assert!(kept <= 16 << 20, "the pool keeps {kept} bytes resident");
}
