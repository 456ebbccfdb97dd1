//! A target for the funclatency/funccount live tests: functions with known durations and call
//! counts. `functarget SLEEPY_CALLS SLEEP_MS COUNT_A COUNT_B` calls `ebpfx_sleepy` (which
//! sleeps SLEEP_MS) SLEEPY_CALLS times, then `ebpfx_count_a` COUNT_A times and `ebpfx_count_b`
//! COUNT_B times. Built by `cargo test` into target/<profile>/examples/functarget.
use std::time::Duration;

#[no_mangle]
#[inline(never)]
pub extern "C" fn ebpfx_sleepy(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn ebpfx_count_a(x: u64) -> u64 {
    std::hint::black_box(x.wrapping_mul(3))
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn ebpfx_count_b(x: u64) -> u64 {
    std::hint::black_box(x.wrapping_add(7))
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let (sleepy, ms, a, b) = (arg(1, 5), arg(2, 20), arg(3, 3), arg(4, 7));
    for _ in 0..sleepy {
        ebpfx_sleepy(std::hint::black_box(ms));
    }
    let mut acc = 0u64;
    for i in 0..a {
        acc = acc.wrapping_add(ebpfx_count_a(std::hint::black_box(i)));
    }
    for i in 0..b {
        acc = acc.wrapping_add(ebpfx_count_b(std::hint::black_box(i)));
    }
    std::hint::black_box(acc);
}
