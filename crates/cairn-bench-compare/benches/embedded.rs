//! cairn-core vs raw fjall vs redb vs sled, alternating systems within each round.
//!
//! `cargo bench -p cairn-bench-compare --bench embedded -- [--keys N] [--rounds R]
//! [--ops N] [--durable-ops N] [--writers N] [--phase-secs S] [--systems a,b] [--csv FILE]`
//!
//! Without `--bench` in its arguments (that is, under `cargo test`) it runs one
//! tiny round per system and writes nothing, so CI exercises it cheaply.

use cairn_bench_compare::{Params, Row, SYSTEMS, run_round};
use std::io::Write as _;
use std::time::Duration;

/// The allocator the `cairn` binary ships with, for every engine alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    params: Params,
    rounds: u32,
    systems: Vec<String>,
    csv: Option<String>,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        params: Params {
            keys: 1_000_000,
            batch: 1_000,
            ops: 1_000_000,
            durable_ops: 5_000,
            writers: 16,
            phase_time: Duration::from_secs(3),
        },
        rounds: 3,
        systems: SYSTEMS.iter().map(|s| s.to_string()).collect(),
        csv: None,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: &String| s.parse::<u64>().map_err(|e| format!("{flag} {s:?}: {e}"));
        match flag.as_str() {
            "--bench" => {}
            "--keys" => a.params.keys = num(val()?)?,
            "--rounds" => a.rounds = u32::try_from(num(val()?)?).map_err(|e| format!("--rounds: {e}"))?,
            "--ops" => a.params.ops = num(val()?)?,
            "--durable-ops" => a.params.durable_ops = num(val()?)?,
            "--writers" => a.params.writers = num(val()?)?,
            "--phase-secs" => {
                let s = val()?;
                let secs: f64 = s.parse().map_err(|e| format!("--phase-secs {s:?}: {e}"))?;
                a.params.phase_time = Duration::from_secs_f64(secs);
            }
            "--systems" => a.systems = val()?.split(',').map(str::to_string).collect(),
            "--csv" => a.csv = Some(val()?.clone()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.params.keys < 100 || !a.params.keys.is_multiple_of(100) {
        return Err(format!(
            "--keys must be a positive multiple of 100, got {}",
            a.params.keys
        ));
    }
    if let Some(bad) = a.systems.iter().find(|s| !SYSTEMS.contains(&s.as_str())) {
        return Err(format!(
            "unknown system {bad:?} in --systems; known: {}",
            SYSTEMS.join(",")
        ));
    }
    Ok(a)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let scratch = tempfile::Builder::new()
        .prefix("cairn-bench-embedded")
        .tempdir()
        .expect("scratch dir");
    if !argv.iter().any(|a| a == "--bench") {
        for system in SYSTEMS {
            let rows = run_round(system, scratch.path(), &Params::smoke(), 1);
            println!("smoke {system}: {} measurements", rows.len());
        }
        return;
    }
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("embedded bench: {e}");
            std::process::exit(2);
        }
    };
    let mut out = args.csv.as_ref().map(|path| {
        let new = !std::path::Path::new(path).exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open --csv file");
        if new {
            writeln!(f, "suite,workload,system,round,metric,value").expect("write csv");
        }
        f
    });
    for round in 1..=args.rounds {
        // Rotate the visiting order each round so no system always runs first (A B C D, B C D A, ...).
        let n = args.systems.len();
        for i in 0..n {
            let system = &args.systems[(i + round as usize - 1) % n];
            eprintln!("embedded: round {round}/{} {system}", args.rounds);
            let rows = run_round(system, scratch.path(), &args.params, round);
            for Row {
                workload,
                system,
                round,
                metric,
                value,
            } in rows
            {
                println!("{workload:<20} {system:<6} round {round} {metric:<10} {value:>14.1}");
                if let Some(f) = out.as_mut() {
                    writeln!(f, "embedded,{workload},{system},{round},{metric},{value}").expect("write csv");
                }
            }
        }
    }
}
