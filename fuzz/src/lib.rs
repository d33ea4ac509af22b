//! Fuzzing on the stable toolchain, as bounded loops: each target turns random bytes into a
//! structured input with `arbitrary`, runs the code under test, and checks what must hold
//! whatever the input. Runs are reproducible: the loop's seed is printed, and
//! `RCONTAINERD_FUZZ_SEED` replays it.
//!
//! `RCONTAINERD_FUZZ_SECONDS` bounds each target's run (CI runs a short pass; see
//! docs/testing.md for the long one).

pub mod apply;
pub mod filters;

use std::time::{Duration, Instant};

/// How long each target runs: `RCONTAINERD_FUZZ_SECONDS`, else `default`.
pub fn budget(default: Duration) -> Duration {
    std::env::var("RCONTAINERD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// Runs `case` on inputs made from random bytes until `budget` is spent; returns the number of
/// cases run. Each case gets its own seed, printed before it runs when it fails (the panic
/// carries it), so `RCONTAINERD_FUZZ_SEED=<seed>` runs exactly that case again.
pub fn run_for(budget: Duration, mut case: impl FnMut(u64, &[u8])) -> u64 {
    if let Some(seed) = std::env::var("RCONTAINERD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        case(seed, &bytes_for(seed));
        return 1;
    }
    let start = Instant::now();
    let mut rng = fastrand::Rng::new();
    let mut cases = 0;
    while start.elapsed() < budget {
        let seed = rng.u64(..);
        let bytes = bytes_for(seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(seed, &bytes)));
        if let Err(panic) = result {
            eprintln!("fuzz case failed; replay with RCONTAINERD_FUZZ_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
        cases += 1;
    }
    cases
}

/// The random bytes of one case: up to 4 KiB, from its seed.
fn bytes_for(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let len = rng.usize(..4096);
    (0..len).map(|_| rng.u8(..)).collect()
}
