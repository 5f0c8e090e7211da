//! `synthscope bench generate`: generation plus PNG encoding throughput, all cores, in memory.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use imaging::codec::FileFormat;
use rayon::prelude::*;
use synth::dataset::{self, Record};
use synth::scattering::SaxsConfig;
use synth::tem::TemConfig;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds to spend on each case (at least 2 images are always made).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// Runs `make(i)` on all cores until `seconds` have passed; returns (images, elapsed s).
fn measure(seconds: f64, make: impl Fn(u64) -> Result<usize> + Sync) -> Result<(u64, f64)> {
    let threads = rayon::current_num_threads() as u64;
    let started = Instant::now();
    let mut done = 0u64;
    let mut bytes = 0usize;
    while done < 2 || started.elapsed().as_secs_f64() < seconds {
        bytes += (done..done + threads)
            .into_par_iter()
            .map(&make)
            .collect::<Result<Vec<_>>>()?
            .iter()
            .sum::<usize>();
        done += threads;
    }
    std::hint::black_box(bytes);
    Ok((done, started.elapsed().as_secs_f64()))
}

pub(crate) fn generate(a: &BenchArgs) -> Result<()> {
    println!(
        "generation + PNG encoding, {} threads, in memory",
        rayon::current_num_threads()
    );
    println!("{:<22} {:>10} {:>12}", "case", "images", "images/s");
    // Each case makes the record of image i: generation and PNG encoding, as the CLI writes it.
    type Make = Box<dyn Fn(u64) -> Result<Record> + Sync>;
    let mut cases: Vec<(String, Make)> = Vec::new();
    for size in [256usize, 1000, 2048] {
        let cfg = SaxsConfig {
            size_px: size,
            ..SaxsConfig::default()
        };
        let make = move |i| {
            Ok(dataset::saxs_record(
                &dataset::generate_saxs(&cfg, 1, i)?,
                1,
                i,
                FileFormat::Png,
            )?)
        };
        cases.push((format!("saxs {size}x{size}"), Box::new(make)));
    }
    for (w, h) in [(496usize, 96usize), (1024, 1024)] {
        let cfg = TemConfig {
            width_px: w,
            height_px: h,
            ..TemConfig::default()
        };
        let make = move |i| {
            Ok(dataset::tem_record(
                &dataset::generate_tem(&cfg, 1, i)?,
                1,
                i,
                FileFormat::Png,
            )?)
        };
        cases.push((format!("tem {h}x{w} (HxW)"), Box::new(make)));
    }
    for (name, make) in cases {
        let (n, secs) = measure(a.seconds, |i| {
            Ok(make(i)?.files.iter().map(|f| f.bytes.len()).sum())
        })?;
        println!("{name:<22} {n:>10} {:>12.1}", n as f64 / secs);
    }
    Ok(())
}
