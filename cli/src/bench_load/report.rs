//! A phase's summary and per-second timeline, the soak verdict, the knee of the sweep, and
//! the charts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::drive::{self, PhaseRun, Sample};
use super::svg::{self, Chart, Series};
use crate::CliError;
use crate::bench::pct_ms;

/// One second of a phase.
#[derive(Clone, Debug, Default)]
pub struct Second {
    pub t: u64,
    /// Requests due in this second.
    pub offered: u64,
    /// Correct answers that arrived in this second.
    pub completed_ok: u64,
    /// Errors (wrong verdicts, RPC errors, not sent) of requests due in this second.
    pub errors: u64,
    /// Latency percentiles of requests due in this second.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub verifier_cpu_pct: Option<f64>,
    pub verifier_rss_mib: Option<f64>,
    pub machine_busy_pct: Option<f64>,
}

/// A phase, summarised.
#[derive(Clone, Debug)]
pub struct Phase {
    pub rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub sent: u64,
    /// Requests due after the warm-up: what the summary (and `by_class`) counts.
    pub measured: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub error_examples: BTreeMap<String, String>,
    pub by_class: BTreeMap<String, (u64, u64)>,
    /// Correct answers that arrived in the measured window, per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub verifier_cpu_ms_per_op: Option<f64>,
    pub generator_cpu_ms_per_op: Option<f64>,
    pub rss_start: Option<u64>,
    pub rss_after_warmup: Option<u64>,
    pub rss_end: Option<u64>,
    pub rss_max: Option<u64>,
    pub load_average: (Option<f64>, Option<f64>),
    pub machine_busy_pct: Option<f64>,
    pub caches_end: Option<Value>,
    pub cache_check: Option<(bool, Value)>,
    pub timeline: Vec<Second>,
}

fn busy(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (a?, b?);
    let dt = t1.checked_sub(t0).filter(|d| *d > 0)?;
    Some(b1.saturating_sub(b0) as f64 / dt as f64 * 100.0)
}

/// The first sample at or after `t` seconds.
fn at(samples: &[Sample], t: f64) -> Option<&Sample> {
    samples.iter().find(|s| s.t + 1e-6 >= t)
}

impl Phase {
    pub fn of(run: &PhaseRun, warmup_s: f64) -> Phase {
        let dur = run.duration.as_secs_f64();
        let warmup_s = warmup_s.min(dur);
        let measured: Vec<&drive::Outcome> = run
            .outcomes
            .iter()
            .filter(|o| o.due_s >= warmup_s)
            .collect();
        let mut lat: Vec<Duration> = measured
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.latency)
            .collect();
        lat.sort_unstable();
        let measured_owned: Vec<drive::Outcome> = measured.iter().map(|o| (*o).clone()).collect();
        let (mut error_kinds, error_examples) = drive::errors(&measured_owned);
        if run.unfinished > 0 {
            error_kinds.insert("unanswered_after_drain".into(), run.unfinished as u64);
        }
        let errors = error_kinds.values().sum::<u64>();
        let ok = measured.iter().filter(|o| o.error.is_none()).count() as u64;
        // The service rate: correct answers that arrived inside the measured window (answers
        // that came during the drain are late; counting them would hide an overload).
        let in_window = run
            .outcomes
            .iter()
            .filter(|o| o.error.is_none() && o.done_s >= warmup_s && o.done_s <= dur)
            .count() as u64;
        let mut by_class: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for o in &measured {
            let e = by_class.entry(o.class.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(o.error.is_some());
        }
        let window = (dur - warmup_s).max(1e-9);

        // CPU per operation over the measured window: the verifier's and this process's.
        let first = at(&run.samples, warmup_s);
        let last = run.samples.last();
        let cpu_per_op = |f: fn(&Sample) -> Option<f64>| -> Option<f64> {
            let d = f(last?)? - f(first?)?;
            (ok + errors > 0).then(|| d * 1000.0 / (ok + errors) as f64)
        };
        let rss = |s: Option<&Sample>| s.and_then(|s| s.verifier).map(|v| v.rss_bytes);

        let secs = dur.ceil() as usize;
        let mut timeline: Vec<Second> = (0..secs)
            .map(|t| Second {
                t: t as u64,
                ..Second::default()
            })
            .collect();
        let mut lat_by_sec: Vec<Vec<Duration>> = vec![Vec::new(); secs];
        for o in &run.outcomes {
            let due = o.due_s as usize;
            if let Some(s) = timeline.get_mut(due) {
                s.offered += 1;
                if o.error.is_some() {
                    s.errors += 1;
                }
            }
            if o.error.is_none() {
                if let Some(v) = lat_by_sec.get_mut(due) {
                    v.push(o.latency);
                }
                if let Some(s) = timeline.get_mut(o.done_s as usize) {
                    s.completed_ok += 1;
                }
            }
        }
        for (s, mut l) in timeline.iter_mut().zip(lat_by_sec) {
            l.sort_unstable();
            s.p50_ms = pct_ms(&l, 0.50);
            s.p99_ms = pct_ms(&l, 0.99);
            let a = at(&run.samples, s.t as f64);
            // The last second may end with the phase's final sample.
            let b = at(&run.samples, s.t as f64 + 1.0).or(run.samples.last());
            if let (Some(a), Some(b)) = (a, b.filter(|b| a.is_some_and(|a| b.t > a.t))) {
                let dt = b.t - a.t;
                s.verifier_cpu_pct = match (a.verifier, b.verifier) {
                    (Some(x), Some(y)) => Some((y.cpu_s - x.cpu_s) / dt * 100.0),
                    _ => None,
                };
                s.verifier_rss_mib = b.verifier.map(|v| v.rss_bytes as f64 / (1 << 20) as f64);
                s.machine_busy_pct = busy(a.machine, b.machine);
            }
        }

        let caches_end = last.and_then(|s| s.scrape.as_ref()).map(|s| {
            json!({
                "entries": s.cache_entries,
                "sizes": s.cache_sizes,
                "bounds": s.cache_bounds,
            })
        });
        // Every cache whose bound is exposed must be within it, at every sample.
        let cache_check = last.and_then(|s| s.scrape.as_ref()).map(|_| {
            let mut worst: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            for s in run.samples.iter().filter_map(|s| s.scrape.as_ref()) {
                for (k, bound) in &s.cache_bounds {
                    let size = s.cache_sizes.get(k).copied().or_else(|| {
                        k.strip_suffix("/entries")
                            .and_then(|c| s.cache_entries.get(c).copied())
                    });
                    if let Some(size) = size {
                        let e = worst.entry(k.clone()).or_insert((0.0, *bound));
                        e.0 = e.0.max(size);
                    }
                }
            }
            let ok = !worst.is_empty() && worst.values().all(|(size, bound)| size <= bound);
            let detail: BTreeMap<String, Value> = worst
                .into_iter()
                .map(|(k, (size, bound))| (k, json!({ "max_seen": size, "bound": bound })))
                .collect();
            (ok, json!(detail))
        });

        Phase {
            rate: run.rate,
            duration_s: dur,
            warmup_s,
            sent: run.outcomes.len() as u64,
            measured: measured.len() as u64,
            ok,
            errors,
            error_kinds,
            error_examples,
            by_class,
            throughput: in_window as f64 / window,
            p50_ms: pct_ms(&lat, 0.50),
            p90_ms: pct_ms(&lat, 0.90),
            p99_ms: pct_ms(&lat, 0.99),
            max_ms: pct_ms(&lat, 1.0),
            verifier_cpu_ms_per_op: cpu_per_op(|s| s.verifier.map(|v| v.cpu_s)),
            generator_cpu_ms_per_op: cpu_per_op(|s| s.generator.map(|v| v.cpu_s)),
            rss_start: rss(run.samples.first()),
            rss_after_warmup: rss(first),
            rss_end: rss(last),
            rss_max: run
                .samples
                .iter()
                .filter_map(|s| s.verifier.map(|v| v.rss_bytes))
                .max(),
            load_average: (
                run.samples.first().and_then(|s| s.load_average),
                last.and_then(|s| s.load_average),
            ),
            machine_busy_pct: busy(first.and_then(|s| s.machine), last.and_then(|s| s.machine)),
            caches_end,
            cache_check,
            timeline,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "target_rate": self.rate,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "sent": self.sent,
            "measured": self.measured,
            "ok": self.ok,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "error_examples": self.error_examples,
            "by_class": self.by_class.iter().map(|(k, (n, e))| (k.clone(), json!({"sent": n, "errors": e}))).collect::<BTreeMap<_, _>>(),
            "throughput_per_sec": self.throughput,
            "latency_ms": { "p50": self.p50_ms, "p90": self.p90_ms, "p99": self.p99_ms, "max": self.max_ms },
            "cpu_ms_per_op": {
                "verifier": self.verifier_cpu_ms_per_op,
                "load_generator": self.generator_cpu_ms_per_op,
            },
            "verifier_rss_bytes": {
                "start": self.rss_start,
                "after_warmup": self.rss_after_warmup,
                "end": self.rss_end,
                "max": self.rss_max,
            },
            "machine": {
                "load_average_start": self.load_average.0,
                "load_average_end": self.load_average.1,
                "busy_pct": self.machine_busy_pct,
            },
            "caches_end": self.caches_end,
            "timeline": self.timeline.iter().map(|s| json!({
                "t": s.t,
                "offered": s.offered,
                "completed_ok": s.completed_ok,
                "errors": s.errors,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "verifier_cpu_pct": s.verifier_cpu_pct,
                "verifier_rss_mib": s.verifier_rss_mib,
                "machine_busy_pct": s.machine_busy_pct,
            })).collect::<Vec<_>>(),
        })
    }

    /// The soak criteria: no error, RSS growth after the warm-up under `max_growth`, every
    /// cache within its bound (known only with the verifier's metrics).
    pub fn soak_verdict(&self, max_growth: f64, have_metrics: bool) -> Value {
        let growth = match (self.rss_after_warmup, self.rss_end) {
            (Some(a), Some(e)) if a > 0 => Some((e as f64 - a as f64) / a as f64),
            _ => None,
        };
        let rss_ok = growth.map(|g| g < max_growth);
        let caches_ok = self.cache_check.as_ref().map(|(ok, _)| *ok);
        let pass = self.errors == 0 && rss_ok == Some(true) && caches_ok == Some(true);
        json!({
            "rate": self.rate,
            "errors": self.errors,
            "rss_growth_after_warmup": growth,
            "rss_growth_limit": max_growth,
            "rss_ok": rss_ok,
            "caches": self.cache_check.as_ref().map(|(_, d)| d.clone()),
            "caches_ok": caches_ok,
            "caches_note": if have_metrics { Value::Null } else { json!("no --metrics-url: cache sizes unknown, the soak cannot pass") },
            "pass": pass,
        })
    }
}

/// The highest rate served as offered: at least 95 % of it answered correctly and p99 within
/// three times the lowest rate's p99. Past it the queue grows (the knee).
pub fn knee(phases: &[Phase]) -> Value {
    let mut sorted: Vec<&Phase> = phases.iter().collect();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let Some(base) = sorted.first().map(|p| p.p99_ms.max(1e-3)) else {
        return Value::Null;
    };
    let knee = sorted
        .iter()
        .take_while(|p| p.throughput >= 0.95 * p.rate && p.errors == 0 && p.p99_ms <= 3.0 * base)
        .last();
    json!({
        "rule": "highest offered rate with >= 95 % answered correctly, no error, p99 <= 3 x the lowest rate's p99",
        "rate": knee.map(|p| p.rate),
        "p99_ms": knee.map(|p| p.p99_ms),
    })
}

fn write(dir: &Path, name: &str, chart: &Chart<'_>, series: &[Series]) -> Result<String, CliError> {
    let path = dir.join(name);
    std::fs::write(&path, svg::render(chart, series))
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

fn timeline_charts(
    dir: &Path,
    prefix: &str,
    what: &str,
    p: &Phase,
) -> Result<Vec<String>, CliError> {
    let pts = |f: &dyn Fn(&Second) -> Option<f64>| -> Vec<(f64, f64)> {
        p.timeline
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t as f64, v)))
            .collect()
    };
    let title = format!("{what}: latency over time at {:.1} requests/s", p.rate);
    let lat = write(
        dir,
        &format!("{prefix}-timeline-latency.svg"),
        &Chart {
            title: &title,
            x_label: "seconds",
            y_label: "latency from due time (ms)",
        },
        &[
            Series {
                name: "p50".into(),
                color: "#1f77b4",
                points: pts(&|s| Some(s.p50_ms)),
            },
            Series {
                name: "p99".into(),
                color: "#d62728",
                points: pts(&|s| Some(s.p99_ms)),
            },
        ],
    )?;
    let title = format!(
        "{what}: throughput, errors, verifier CPU at {:.1} requests/s",
        p.rate
    );
    let thr = write(
        dir,
        &format!("{prefix}-timeline-throughput.svg"),
        &Chart {
            title: &title,
            x_label: "seconds",
            y_label: "per second / CPU %",
        },
        &[
            Series {
                name: "offered/s".into(),
                color: "#7f7f7f",
                points: pts(&|s| Some(s.offered as f64)),
            },
            Series {
                name: "correct/s".into(),
                color: "#2ca02c",
                points: pts(&|s| Some(s.completed_ok as f64)),
            },
            Series {
                name: "errors/s".into(),
                color: "#d62728",
                points: pts(&|s| Some(s.errors as f64)),
            },
            Series {
                name: "verifier CPU %".into(),
                color: "#9467bd",
                points: pts(&|s| s.verifier_cpu_pct),
            },
        ],
    )?;
    let title = format!("{what}: verifier RSS");
    let rss = write(
        dir,
        &format!("{prefix}-timeline-rss.svg"),
        &Chart {
            title: &title,
            x_label: "seconds",
            y_label: "RSS (MiB)",
        },
        &[Series {
            name: "RSS".into(),
            color: "#ff7f0e",
            points: pts(&|s| s.verifier_rss_mib),
        }],
    )?;
    Ok(vec![lat, thr, rss])
}

/// The curve of the sweep and the timeline of its last phase (and of the soak).
pub fn write_charts(
    dir: &Path,
    prefix: &str,
    phases: &[Phase],
    soak: Option<&Phase>,
) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    if !phases.is_empty() {
        let mut sorted: Vec<&Phase> = phases.iter().collect();
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let pts = |f: fn(&Phase) -> f64| sorted.iter().map(|p| (p.rate, f(p))).collect();
        out.push(write(
            dir,
            &format!("{prefix}-curve.svg"),
            &Chart {
                title: "Latency versus offered load (mixed corpus)",
                x_label: "offered requests/s",
                y_label: "latency from due time (ms)",
            },
            &[
                Series {
                    name: "p50".into(),
                    color: "#1f77b4",
                    points: pts(|p| p.p50_ms),
                },
                Series {
                    name: "p99".into(),
                    color: "#d62728",
                    points: pts(|p| p.p99_ms),
                },
            ],
        )?);
        out.push(write(
            dir,
            &format!("{prefix}-curve-throughput.svg"),
            &Chart {
                title: "Correct answers per second versus offered load",
                x_label: "offered requests/s",
                y_label: "correct answers/s",
            },
            &[
                Series {
                    name: "offered".into(),
                    color: "#7f7f7f",
                    points: pts(|p| p.rate),
                },
                Series {
                    name: "correct".into(),
                    color: "#2ca02c",
                    points: pts(|p| p.throughput),
                },
            ],
        )?);
        if let Some(last) = sorted.last() {
            out.extend(timeline_charts(dir, prefix, "load", last)?);
        }
    }
    if let Some(s) = soak {
        out.extend(timeline_charts(dir, &format!("{prefix}-soak"), "soak", s)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::procstat::ProcSample;
    use super::*;

    fn outcome(due_s: f64, done_s: f64, error: bool) -> drive::Outcome {
        drive::Outcome {
            due_s,
            done_s,
            latency: Duration::from_secs_f64(done_s - due_s),
            error: error.then(|| ("wrong_verdict".to_owned(), "x".to_owned())),
            class: "valid".into(),
        }
    }

    fn sample(t: f64, cpu_s: f64, rss: u64) -> Sample {
        Sample {
            t,
            verifier: Some(ProcSample {
                cpu_s,
                rss_bytes: rss,
            }),
            ..Sample::default()
        }
    }

    #[test]
    fn late_answers_and_errors_are_not_throughput_and_rss_growth_fails_the_soak() {
        let run = PhaseRun {
            rate: 4.0,
            duration: Duration::from_secs(2),
            // Two answered in time, one during the drain, one wrong.
            outcomes: vec![
                outcome(0.0, 0.1, false),
                outcome(1.0, 1.2, false),
                outcome(1.5, 5.0, false),
                outcome(1.6, 1.7, true),
            ],
            samples: vec![
                sample(0.0, 0.0, 100),
                sample(1.0, 0.5, 100),
                sample(2.0, 1.0, 110),
            ],
            unfinished: 1,
        };
        let p = Phase::of(&run, 0.0);
        assert_eq!(p.throughput, 1.0);
        assert_eq!(p.errors, 2, "{:?}", p.error_kinds);
        assert_eq!(p.timeline.len(), 2);
        assert_eq!(p.timeline[1].offered, 3);
        assert_eq!(p.timeline[0].verifier_cpu_pct, Some(50.0));
        // 1 s of CPU over 5 requests: 3 answered, 1 wrong, 1 unanswered.
        assert_eq!(p.verifier_cpu_ms_per_op, Some(200.0));
        let v = p.soak_verdict(0.05, false);
        assert_eq!(v["rss_ok"], false, "{v}");
        assert_eq!(v["pass"], false, "{v}");
    }

    #[test]
    fn the_knee_is_the_last_rate_served_as_offered() {
        let phase = |rate: f64, throughput: f64, p99_ms: f64| {
            let mut p = Phase::of(
                &PhaseRun {
                    rate,
                    duration: Duration::from_secs(1),
                    outcomes: Vec::new(),
                    samples: Vec::new(),
                    unfinished: 0,
                },
                0.0,
            );
            p.throughput = throughput;
            p.p99_ms = p99_ms;
            p
        };
        let phases = [
            phase(10.0, 10.0, 20.0),
            phase(20.0, 19.5, 40.0),
            phase(40.0, 30.0, 900.0),
            phase(80.0, 80.0, 30.0),
        ];
        assert_eq!(knee(&phases)["rate"], 20.0);
    }
}
