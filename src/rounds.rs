//! The human-in-the-loop rounds on the page's side: which realism model the app classifies
//! with (the shipped one or a fine-tuned round imported as a weights file), predictions of the
//! stored images by that model (with the embeddings the latent-space view projects), and the
//! signals that tell pages the store changed.
//!
//! Round trip: the Dataset page exports a training set → `synthscope train realism --labels
//! training-set.zip --init realism-v2.bin --out realism-r2.bin` → the page imports
//! `realism-r2.bin` ([`import_model`]) → every image is predicted again ([`predict_missing`]) →
//! the Dataset page scores each model version against the experts' consensus.

use leptos::prelude::*;

use crate::compute::{Compute, SegmentSource};
use crate::protocol::{ClassifiedHeader, SHIPPED_MODEL};
use crate::store::{ACTIVE_MODEL, Prediction, Store, StoredImage, StoredModel};

/// Bumped after a page writes labels or predictions that other pages show, so they re-read the
/// store. Provided as context by [`crate::App`].
pub type StoreEpoch = RwSignal<u64>;

/// An image the Annotate page should show next (set by a click in the latent-space view).
/// Provided as context by [`crate::App`].
pub type Focus = RwSignal<Option<String>>;

/// The prediction stored for `item` from a classification. A frame the ensemble did not judge
/// (implausible, or no pattern by its gate) is stored with realism 0: decided not realistic,
/// and last in the uncertainty-first queue.
pub fn prediction_of(item: &str, h: &ClassifiedHeader) -> Prediction {
    Prediction {
        item: item.to_string(),
        model: h.model.clone(),
        realism: if h.not_judged().is_some() {
            0.0
        } else {
            h.realism_score
        },
        threshold: h.vote_threshold,
        tags: labels::TAGS
            .iter()
            .map(|t| {
                h.tags
                    .iter()
                    .find(|(n, _)| n == t)
                    .map_or(0.0, |x| f64::from(x.1))
            })
            .collect(),
        embedding: h.embedding.clone(),
    }
}

/// The model's decision for a stored prediction (as the ensemble decides: above the threshold).
pub fn decided(p: &Prediction) -> bool {
    p.realism > p.threshold
}

/// Predicts every image in `images` with the worker's current model, storing each prediction
/// as it arrives; `progress(done, total)` hears about each image and `stored` gets each
/// prediction once it is saved. Images that cannot be read are reported in the returned
/// message list and skipped; a store failure stops the run.
pub async fn predict_missing(
    compute: &Compute,
    store: &Store,
    images: Vec<StoredImage>,
    progress: impl Fn(usize, usize),
    stored: impl Fn(Prediction),
) -> Result<Vec<String>, String> {
    let n = images.len();
    let mut problems = Vec::new();
    for (k, image) in images.into_iter().enumerate() {
        progress(k, n);
        let Some(bytes) = store.image_bytes(&image.item).await? else {
            problems.push(format!("{}: no longer in the store", image.file));
            continue;
        };
        match compute
            .classify(
                SegmentSource::File(std::rc::Rc::new(bytes)),
                None,
                Default::default(),
                &Default::default(),
                |_| {},
            )
            .await
        {
            Ok(c) => {
                let p = prediction_of(&image.item, &c.header);
                store.put_prediction(&p).await?;
                stored(p);
            }
            Err(e) => problems.push(format!("{}: {e}", image.file)),
        }
    }
    progress(n, n);
    Ok(problems)
}

/// The version name of an imported weights file: the tagger, the file's stem and the first 8
/// hex digits of its SHA-256 (two files of one name stay apart).
pub fn version_of(file: &str, sha256: &str) -> String {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    format!(
        "{}+{stem}-{}",
        crate::weights::TAGGER.name,
        &sha256[..8.min(sha256.len())]
    )
}

/// Imports a realism weights file: the worker checks it and classifies with it from now on;
/// it is kept in the store (so a reload uses it again) and becomes the active model.
pub async fn import_model(
    compute: &Compute,
    store: &Store,
    file: &str,
    bytes: &[u8],
    now: &str,
) -> Result<StoredModel, String> {
    let sha256 = crate::weights::sha256_hex(bytes);
    let version = version_of(file, &sha256);
    let info = compute
        .use_realism(Some((&version, bytes)))
        .await
        .map_err(|e| format!("{file}: {e}"))?;
    let model = StoredModel {
        version,
        file: file.to_string(),
        sha256,
        added_at: now.to_string(),
        trained: info.trained,
        members: info.members,
    };
    store.put_model(&model, bytes).await?;
    store.set_setting(ACTIVE_MODEL, &model.version).await?;
    Ok(model)
}

/// Makes `version` (an imported model, or [`SHIPPED_MODEL`]) the one the app classifies with.
pub async fn activate(compute: &Compute, store: &Store, version: &str) -> Result<(), String> {
    if version == SHIPPED_MODEL {
        compute.use_realism(None).await?;
    } else {
        let bytes = store.model_bytes(version).await?.ok_or_else(|| {
            format!("the weights of {version} are no longer in this browser; import the file again")
        })?;
        compute.use_realism(Some((version, &bytes))).await?;
    }
    store.set_setting(ACTIVE_MODEL, version).await
}

/// At start: hands the worker the model that was active when the app was last used, if it
/// was an imported one. Failing that, the shipped model stays and the returned message says why.
pub async fn restore(compute: &Compute) -> Result<(), String> {
    let store = Store::open().await?;
    match store.setting(ACTIVE_MODEL).await? {
        Some(v) if v != SHIPPED_MODEL => activate(compute, &store, &v).await.map_err(|e| {
            format!("the model {v} could not be restored ({e}); using the shipped one")
        }),
        _ => Ok(()),
    }
}
