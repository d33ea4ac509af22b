//! The boot benchmark's results as Markdown tables, ready for `docs/benchmarks.md`.

use crate::boot::{mib, ms, Plan, Results, Sample};
use crate::stats::{ratios, Spread};
use std::fmt::Write;

/// The target ratio rcontainerd / containerd for both boot time and idle RSS.
const AIM: f64 = 0.3;

pub fn render(plan: &Plan, results: &Results) -> String {
    let mut out = String::new();
    let order: Vec<String> = results.subjects.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        out,
        "Boot = exec → first answered `Version` RPC on the unix socket, {}, {}; idle RSS = VmRSS after {} ms \
         idle. {} measured runs per daemon after 1 warm-up each, alternating run by run ({}).\n",
        if plan.restart {
            "restarting on the root and state an untimed first boot left behind"
        } else {
            "first boot on an empty root"
        },
        if plan.sync_first {
            "after a sync(2)"
        } else {
            "without a sync(2) first"
        },
        plan.idle.as_millis(),
        plan.runs,
        order.join(" → ")
    );
    let _ = writeln!(
        out,
        "rcontainerd's plugin libraries: {}.\n",
        if results.plugin_libraries.is_empty() {
            "none".to_string()
        } else {
            results.plugin_libraries.join(", ")
        }
    );
    out.push_str(
        "| daemon | version | boot ms min / median / max | idle RSS MiB min / median / max \
         | RssAnon MiB median | threads median | processes |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (subject, samples) in results.subjects.iter().zip(&results.samples) {
        let _ = writeln!(
            out,
            "| {subject} | {} | {} | {} | {:.1} | {:.0} | {} |",
            samples.first().map(|s| s.version.as_str()).unwrap_or("?"),
            spread(&boots(samples), 2),
            spread(&rss(samples), 1),
            median(samples, |s| mib(s.status.rss_anon_kib)),
            median(samples, |s| s.status.threads as f64),
            process_counts(samples),
        );
    }
    let Some((ours, theirs)) = results.samples.split_first() else {
        return out;
    };
    out.push_str(
        "\n| rcontainerd / … (run by run) | boot ratio min / median / max \
         | idle RSS ratio min / median / max | boot ≤ 0.3× | idle RSS ≤ 0.3× |\n|---|---:|---:|---|---|\n",
    );
    for (subject, samples) in results.subjects[1..].iter().zip(theirs) {
        let boot = Spread::of(&ratios(&boots(ours), &boots(samples)));
        let memory = Spread::of(&ratios(&rss(ours), &rss(samples)));
        let _ = writeln!(
            out,
            "| {subject} | {} | {} | {} | {} |",
            ratio_spread(boot),
            ratio_spread(memory),
            verdict(boot),
            verdict(memory),
        );
    }
    for (subject, samples) in results.subjects.iter().zip(&results.samples) {
        let killed = samples.iter().filter(|s| s.killed).count();
        let mounts: usize = samples.iter().map(|s| s.leftover_mounts).sum();
        if killed > 0 {
            let _ = writeln!(
                out,
                "\nNote: {subject} ignored SIGTERM and was killed in {killed} run(s)."
            );
        }
        if mounts > 0 {
            let _ = writeln!(
                out,
                "\nNote: {subject} left {mounts} mount(s) behind, unmounted by the bench."
            );
        }
    }
    out
}

fn boots(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| ms(s.boot)).collect()
}

fn rss(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| mib(s.status.vm_rss_kib)).collect()
}

fn median(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    let values: Vec<f64> = samples.iter().map(value).collect();
    Spread::of(&values).map_or(f64::NAN, |s| s.median)
}

fn spread(values: &[f64], decimals: usize) -> String {
    match Spread::of(values) {
        Some(s) => format!(
            "{:.d$} / {:.d$} / {:.d$}",
            s.min,
            s.median,
            s.max,
            d = decimals
        ),
        None => "–".into(),
    }
}

fn ratio_spread(spread: Option<Spread>) -> String {
    match spread {
        Some(s) => format!("{:.3} / {:.3} / {:.3}", s.min, s.median, s.max),
        None => "–".into(),
    }
}

fn verdict(spread: Option<Spread>) -> &'static str {
    match spread {
        Some(s) if s.max <= AIM => "yes, every run",
        Some(s) if s.median <= AIM => "median only",
        Some(_) => "no",
        None => "–",
    }
}

/// "1" when every run had one process, else the range seen.
fn process_counts(samples: &[Sample]) -> String {
    let min = samples.iter().map(|s| s.processes).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.processes).max().unwrap_or(0);
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}
