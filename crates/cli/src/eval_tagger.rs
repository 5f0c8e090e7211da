//! `synthscope eval tagger`: mean average precision of each tagger view on a directory written
//! by `synthscope generate saxs` (use a seed not used in training).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use models::tagger::View;
use synth::scattering::TRAINING_TAGS;

use crate::device::{DeviceChoice, device};
use crate::saxs_data::{self, Beam, ImageView};
use crate::shipped;
use crate::train_tagger::{average_precisions, probabilities, top_k_precision};

#[derive(Debug, Args)]
pub(crate) struct EvalTaggerArgs {
    #[command(flatten)]
    held_out: crate::training::HeldOutArgs,
    /// Take the coefficient view around beam centres estimated from the images, as
    /// `synthscope classify` and the browser do (the figure a user sees), instead of the true
    /// centres of labels.jsonl.
    #[arg(long)]
    estimated_beam: bool,
    /// Also write every image's tag probabilities to this file, one JSON line per image and
    /// view (`{"line": n, "view": …, "tags": {tag: p}}`, n counting labels.jsonl lines from 1):
    /// to look at the images a view gets wrong.
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// `{"map": …, "per_tag_ap": {tag: ap}, "top_k_precision": …}` of one view (null for tags
/// absent from the data).
fn view_json(map: f64, per_tag: &[f64], top_k: f64) -> serde_json::Value {
    let per_tag: serde_json::Map<String, serde_json::Value> = TRAINING_TAGS
        .iter()
        .zip(per_tag)
        .map(|(t, &ap)| {
            let v = if ap.is_finite() {
                serde_json::json!((ap * 1e4).round() / 1e4)
            } else {
                serde_json::Value::Null
            };
            (t.to_string(), v)
        })
        .collect();
    serde_json::json!({
        "map": (map * 1e4).round() / 1e4,
        "per_tag_ap": per_tag,
        "top_k_precision": (top_k * 1e4).round() / 1e4,
    })
}

pub(crate) fn run(a: &EvalTaggerArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let (set, name, digest) =
        shipped::load_tagger(a.held_out.model.as_deref(), &device, "--model")?;
    let needs_image = set.header.configs.iter().any(|c| c.view != View::Coeff);
    let samples = saxs_data::load_dir(
        &a.held_out.data,
        a.held_out.limit,
        Beam::estimated_if(a.estimated_beam),
        ImageView::kept_if(needs_image),
    )?;
    let mut out = serde_json::Map::new();
    let mut headline = None;
    let mut lines = String::new();
    for (config, net) in set.header.configs.iter().zip(&set.nets) {
        let probs = probabilities(net, &samples, &device)?;
        if a.predictions.is_some() {
            for (s, p) in samples.iter().zip(&probs) {
                let tags: serde_json::Map<String, serde_json::Value> = TRAINING_TAGS
                    .iter()
                    .zip(p)
                    .map(|(t, &v)| (t.to_string(), serde_json::json!(v)))
                    .collect();
                let line =
                    serde_json::json!({"line": s.line, "view": config.view.name(), "tags": tags});
                lines.push_str(&line.to_string());
                lines.push('\n');
            }
        }
        let (map, per_tag) = average_precisions(&probs, &samples);
        let v = view_json(map, &per_tag, top_k_precision(&probs, &samples));
        // The headline figures are the joint view's (else the last view's).
        if headline.is_none() || config.view == View::Joint {
            headline = Some(v.clone());
        }
        out.insert(config.view.name().to_string(), v);
    }
    if let Some(serde_json::Value::Object(h)) = headline {
        for (k, v) in h {
            out.insert(k, v);
        }
    }
    if let Some(path) = &a.predictions {
        std::fs::write(path, lines)
            .with_context(|| format!("cannot write the predictions to {}", path.display()))?;
    }
    out.insert("images".into(), serde_json::json!(samples.len()));
    out.insert("model".into(), serde_json::json!(name));
    out.insert(
        "beam".into(),
        serde_json::json!(if a.estimated_beam {
            "estimated"
        } else {
            "true"
        }),
    );
    out.insert("sha256".into(), serde_json::json!(digest));
    out.insert(
        "seconds".into(),
        serde_json::json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
    );
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
