//! The label store: images, experts' labels, model predictions and packs in IndexedDB.
//!
//! Object stores (schema version [`SCHEMA_VERSION`], upgraded step by step in [`migrate`]):
//!
//! | store | key | value |
//! |---|---|---|
//! | `images` | item (hex SHA-256 of the bytes) | [`StoredImage`] (metadata only, cheap to list) |
//! | `blobs` | item | the image file as a `Blob` |
//! | `labels` | `item/annotator` | [`StoredLabel`]: a [`labels::Label`] plus when it was first given |
//! | `predictions` | `item/model` | [`Prediction`] |
//! | `packs` | pack id | [`labels::exchange::PackInfo`] |
//! | `settings` | name | a string (the annotator's name, the realism model in use) |
//! | `models` | version | [`StoredModel`]: an imported realism weights file's description (v2) |
//! | `model_blobs` | version | the weights file as a `Blob` (v2) |
//!
//! Every write is one transaction that the caller awaits to completion (`complete`, not just the
//! request's success), so a label reported saved survives closing the tab at once. Imports write
//! everything in one transaction after validating everything: they land whole or not at all.

use std::collections::HashSet;

use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use labels::Label;
use labels::exchange::{Archive, PackInfo};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// IndexedDB database name.
pub const DB_NAME: &str = "synthscope";
/// The schema this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: u32 = 2;

const IMAGES: &str = "images";
const BLOBS: &str = "blobs";
const LABELS: &str = "labels";
const PREDICTIONS: &str = "predictions";
const PACKS: &str = "packs";
const SETTINGS: &str = "settings";
const MODELS: &str = "models";
const MODEL_BLOBS: &str = "model_blobs";

/// The setting that names the realism model in use (absent: the shipped one).
pub const ACTIVE_MODEL: &str = "realism_model";

/// An imported realism weights file (a fine-tuned round of the human-in-the-loop loop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    /// Version name predictions are stored under.
    pub version: String,
    /// The file's name.
    pub file: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// When it was imported, RFC 3339.
    pub added_at: String,
    /// How it was trained (the file's note).
    pub trained: String,
    /// Each member's name and voting weight.
    pub members: Vec<(String, f64)>,
}

/// An image's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredImage {
    /// Hex SHA-256 of the file's bytes.
    pub item: String,
    /// File name.
    pub file: String,
    /// Where it came from: `upload`, `generated` or `pack`.
    pub source: String,
    /// The pack it came in, if any.
    #[serde(default)]
    pub pack: Option<String>,
    /// Position in its pack (or arrival order), for "pack order".
    pub order: u64,
    /// When it was stored, RFC 3339.
    pub added_at: String,
    /// The model that generated it (for example `diffusion-v3`); `None` for engine images,
    /// uploads and pack images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// The tags the generator was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_tags: Vec<String>,
}

/// A label as stored: the exchange record plus when it was first given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLabel {
    /// The label.
    #[serde(flatten)]
    pub label: Label,
    /// When this annotator first labelled the image, RFC 3339.
    pub created_at: String,
}

/// A model's prediction for an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Hex SHA-256 of the image.
    pub item: String,
    /// Model version (the weights file's name and SHA-256 prefix).
    pub model: String,
    /// Realism score (soft vote, 0–1).
    pub realism: f64,
    /// The vote threshold: `realism` above it is "realistic".
    pub threshold: f64,
    /// Tag probabilities in [`labels::TAGS`] order.
    pub tags: Vec<f64>,
    /// The last layer's features, for the latent-space view.
    #[serde(default)]
    pub embedding: Vec<f32>,
}

/// What an import added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Images not stored before.
    pub images_added: usize,
    /// Images already stored (same bytes).
    pub images_present: usize,
    /// Labels merged in (see [`labels::Merged`]).
    pub labels_added: usize,
    /// Labels that replaced older ones.
    pub labels_updated: usize,
    /// Labels already stored, or older than the stored ones: skipped.
    pub labels_skipped: usize,
    /// The pack's id, when a pack was imported.
    pub pack: Option<String>,
}

impl ImportReport {
    /// One sentence for the page.
    pub fn summary(&self) -> String {
        let pack = self
            .pack
            .as_ref()
            .map(|p| format!("pack {p}: "))
            .unwrap_or_default();
        format!(
            "{pack}{} new images ({} already here), {} new labels, {} updated, {} skipped as duplicates or older",
            self.images_added,
            self.images_present,
            self.labels_added,
            self.labels_updated,
            self.labels_skipped
        )
    }
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: std::rc::Rc<Database>,
}

/// A user-facing message for an IndexedDB failure, naming the fix for the common ones.
fn explain(what: &str, e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains("QuotaExceeded") {
        format!(
            "{what}: the browser's storage for this site is full. Export your labels (Annotate → Export), \
             then remove images you no longer need (Annotate → Clear store) or allow the site more storage."
        )
    } else {
        format!("{what}: {text}")
    }
}

/// A record as stored: its JSON text. (Plain JSON keeps records readable in the browser's
/// developer tools and is fast to convert; the image bytes are stored as blobs.)
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, String> {
    serde_json::to_string(value)
        .map(|text| JsValue::from_str(&text))
        .map_err(|e| format!("cannot store a value: {e}"))
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue) -> Result<T, String> {
    let unreadable = |why: String| {
        format!(
            "the label store holds a record this version cannot read ({why}); export what you can and clear the store"
        )
    };
    let text = value
        .as_string()
        .ok_or_else(|| unreadable("not JSON text".into()))?;
    serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))
}

/// The key of a (item, second part) record.
fn pair_key(item: &str, second: &str) -> JsValue {
    JsValue::from_str(&format!("{item}/{second}"))
}

/// Creates or upgrades the object stores from `old` to [`SCHEMA_VERSION`].
fn migrate(db: &Database, old: u32) -> Result<(), idb::Error> {
    if old < 1 {
        for name in [IMAGES, BLOBS, LABELS, PREDICTIONS, PACKS, SETTINGS] {
            db.create_object_store(name, ObjectStoreParams::new())?;
        }
    }
    if old < 2 {
        // Imported realism weights (the human-in-the-loop rounds).
        for name in [MODELS, MODEL_BLOBS] {
            db.create_object_store(name, ObjectStoreParams::new())?;
        }
    }
    // Version 3 and later add their steps here, each guarded by `old < N`.
    Ok(())
}

impl Store {
    /// Opens (creating or migrating) the database.
    pub async fn open() -> Result<Self, String> {
        let factory = Factory::new().map_err(|e| {
            explain(
                "IndexedDB is not available (a private window may disable it)",
                e,
            )
        })?;
        let mut request = factory
            .open(DB_NAME, Some(SCHEMA_VERSION))
            .map_err(|e| explain("cannot open the label store", e))?;
        request.on_upgrade_needed(|event| {
            let old = event.old_version().unwrap_or(0);
            if let Ok(db) = event.database()
                && let Err(e) = migrate(&db, old)
            {
                web_sys::console::error_1(&format!("label store migration failed: {e}").into());
            }
        });
        let db = request.await.map_err(|e| {
            explain(
                "cannot open the label store (is the app open in a newer version in another tab?)",
                e,
            )
        })?;
        Ok(Self {
            db: std::rc::Rc::new(db),
        })
    }

    /// Runs `fill` on a read-write transaction over `stores` and waits until it is committed.
    async fn write(
        &self,
        what: &str,
        stores: &[&str],
        fill: impl FnOnce(&idb::Transaction) -> Result<(), String>,
    ) -> Result<(), String> {
        let tx = self
            .db
            .transaction(stores, TransactionMode::ReadWrite)
            .map_err(|e| explain(what, e))?;
        if let Err(e) = fill(&tx) {
            let _ = tx.abort();
            return Err(format!("{what}: {e}"));
        }
        // Keep the raw transaction to read why it aborted (quota errors arrive that way).
        let raw: web_sys::IdbTransaction = tx.into();
        let result = idb::Transaction::from(raw.clone()).await;
        let reason = || {
            raw.error()
                .map(|e| format!("{}: {}", e.name(), e.message()))
                .unwrap_or_else(|| "the browser aborted the write".into())
        };
        match result {
            Ok(idb::TransactionResult::Committed) => Ok(()),
            Ok(idb::TransactionResult::Aborted) => Err(explain(what, reason())),
            Err(e) => Err(explain(what, format!("{e} ({})", reason()))),
        }
    }

    async fn get_all<T: for<'de> Deserialize<'de>>(&self, store: &str) -> Result<Vec<T>, String> {
        let what = format!("cannot read the {store} of the label store");
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .map_err(|e| explain(&what, e))?;
        let values = tx
            .object_store(store)
            .map_err(|e| explain(&what, e))?
            .get_all(None, None)
            .map_err(|e| explain(&what, e))?
            .await
            .map_err(|e| explain(&what, e))?;
        values.into_iter().map(from_js).collect()
    }

    /// The record of `store` under `key`, if any.
    async fn get(&self, what: &str, store: &str, key: &str) -> Result<Option<JsValue>, String> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .map_err(|e| explain(what, e))?;
        tx.object_store(store)
            .map_err(|e| explain(what, e))?
            .get(JsValue::from_str(key))
            .map_err(|e| explain(what, e))?
            .await
            .map_err(|e| explain(what, e))
    }

    /// Every stored label.
    pub async fn labels(&self) -> Result<Vec<StoredLabel>, String> {
        self.get_all(LABELS).await
    }

    /// Every stored image's metadata.
    pub async fn images(&self) -> Result<Vec<StoredImage>, String> {
        self.get_all(IMAGES).await
    }

    /// Every stored prediction.
    pub async fn predictions(&self) -> Result<Vec<Prediction>, String> {
        self.get_all(PREDICTIONS).await
    }

    /// Every imported pack.
    pub async fn packs(&self) -> Result<Vec<PackInfo>, String> {
        self.get_all(PACKS).await
    }

    /// Every imported realism model.
    pub async fn models(&self) -> Result<Vec<StoredModel>, String> {
        self.get_all(MODELS).await
    }

    /// Stores an imported realism weights file and its description in one transaction.
    pub async fn put_model(&self, model: &StoredModel, bytes: &[u8]) -> Result<(), String> {
        let key = JsValue::from_str(&model.version);
        let (meta, file) = (to_js(model)?, blob(bytes)?);
        self.write(
            "the weights file was not stored",
            &[MODELS, MODEL_BLOBS],
            |tx| {
                put(tx, MODELS, &meta, &key)?;
                put(tx, MODEL_BLOBS, &file, &key)
            },
        )
        .await
    }

    /// The bytes of an imported weights file, if stored.
    pub async fn model_bytes(&self, version: &str) -> Result<Option<Vec<u8>>, String> {
        self.blob_bytes(
            "cannot read a weights file from the label store",
            MODEL_BLOBS,
            version,
        )
        .await
    }

    /// The bytes of an image, if stored.
    pub async fn image_bytes(&self, item: &str) -> Result<Option<Vec<u8>>, String> {
        self.blob_bytes("cannot read an image from the label store", BLOBS, item)
            .await
    }

    /// The bytes of the blob under `key` in `store`, if any.
    async fn blob_bytes(
        &self,
        what: &str,
        store: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        let value = self.get(what, store, key).await?;
        let Some(value) = value else { return Ok(None) };
        let blob: web_sys::Blob = value
            .dyn_into()
            .map_err(|_| format!("{what}: the stored record is not a file"))?;
        let buffer = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
            .await
            .map_err(|e| format!("{what}: {}", crate::browser::js_error(&e)))?;
        Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
    }

    /// Saves one label in its own transaction; returns once it is committed.
    pub async fn put_label(&self, label: &StoredLabel) -> Result<(), String> {
        let value = to_js(label)?;
        let key = pair_key(&label.label.item, &label.label.annotator);
        self.write("the label was not saved", &[LABELS], |tx| {
            put(tx, LABELS, &value, &key)
        })
        .await
    }

    /// Removes one annotator's label of an image (undoing a first label).
    pub async fn delete_label(&self, item: &str, annotator: &str) -> Result<(), String> {
        let key = pair_key(item, annotator);
        self.write("the label was not removed", &[LABELS], |tx| {
            tx.object_store(LABELS)
                .and_then(|s| s.delete(key))
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Saves a prediction.
    pub async fn put_prediction(&self, p: &Prediction) -> Result<(), String> {
        let value = to_js(p)?;
        let key = pair_key(&p.item, &p.model);
        self.write("the prediction was not saved", &[PREDICTIONS], |tx| {
            put(tx, PREDICTIONS, &value, &key)
        })
        .await
    }

    /// A setting (such as the annotator's name).
    pub async fn setting(&self, name: &str) -> Result<Option<String>, String> {
        let value = self.get("cannot read the settings", SETTINGS, name).await?;
        Ok(value.and_then(|v| v.as_string()))
    }

    /// Saves a setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), String> {
        let (key, value) = (JsValue::from_str(name), JsValue::from_str(value));
        self.write("the setting was not saved", &[SETTINGS], |tx| {
            put(tx, SETTINGS, &value, &key)
        })
        .await
    }

    /// Stores new images (those already stored are left alone) in one transaction.
    pub async fn add_images(
        &self,
        images: &[(StoredImage, &[u8])],
    ) -> Result<ImportReport, String> {
        let known: HashSet<String> = self.images().await?.into_iter().map(|i| i.item).collect();
        let mut report = ImportReport::default();
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        for (meta, bytes) in images {
            if known.contains(&meta.item) || !seen.insert(meta.item.clone()) {
                report.images_present += 1;
                continue;
            }
            rows.push((JsValue::from_str(&meta.item), (to_js(meta)?, blob(bytes)?)));
            report.images_added += 1;
        }
        self.write("the images were not stored", &[IMAGES, BLOBS], |tx| {
            for (key, (meta, blob)) in &rows {
                put(tx, IMAGES, meta, key)?;
                put(tx, BLOBS, blob, key)?;
            }
            Ok(())
        })
        .await?;
        Ok(report)
    }

    /// Imports a validated export or pack: its images, its labels (newest per image and
    /// annotator wins) and its pack description, all in one transaction. Refuses, writing
    /// nothing, if a label names an image that is neither stored nor in the archive.
    pub async fn import(&self, archive: &Archive, now: &str) -> Result<ImportReport, String> {
        let stored_images = self.images().await?;
        let known: HashSet<&str> = stored_images.iter().map(|i| i.item.as_str()).collect();
        let carried: HashSet<&str> = archive.images.iter().map(|i| i.item.as_str()).collect();
        if let Some(orphan) = archive
            .labels
            .iter()
            .find(|l| !known.contains(l.item.as_str()) && !carried.contains(l.item.as_str()))
        {
            return Err(format!(
                "nothing was imported: a label by {} is for {} ({}…), an image that is neither in this browser nor in the file. \
                 Import the pack with the images first, or export the labels with their images.",
                orphan.annotator,
                orphan.file,
                &orphan.item[..12]
            ));
        }
        let stored_labels = self.labels().await?;
        let existing: Vec<Label> = stored_labels.iter().map(|s| s.label.clone()).collect();
        let before: std::collections::HashMap<(&str, &str), &Label> = existing
            .iter()
            .map(|l| ((l.item.as_str(), l.annotator.as_str()), l))
            .collect();
        let merged = labels::merge(&existing, &archive.labels);
        let mut report = ImportReport {
            labels_added: merged.added,
            labels_updated: merged.updated,
            labels_skipped: merged.duplicates + merged.stale,
            pack: archive.pack.as_ref().map(|p| p.id.clone()),
            ..ImportReport::default()
        };
        // Only the labels the merge added or changed are written.
        let created: std::collections::HashMap<(String, String), String> = stored_labels
            .into_iter()
            .map(|s| ((s.label.item, s.label.annotator), s.created_at))
            .collect();
        let mut label_rows = Vec::new();
        for label in &merged.labels {
            let key = (label.item.clone(), label.annotator.clone());
            let unchanged = before
                .get(&(label.item.as_str(), label.annotator.as_str()))
                .is_some_and(|e| *e == label);
            if unchanged {
                continue;
            }
            let stored = StoredLabel {
                created_at: created
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| label.updated_at.clone()),
                label: label.clone(),
            };
            label_rows.push((pair_key(&label.item, &label.annotator), to_js(&stored)?));
        }
        let base_order = stored_images.iter().map(|i| i.order + 1).max().unwrap_or(0);
        let mut image_rows = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (n, image) in archive.images.iter().enumerate() {
            if known.contains(image.item.as_str()) || !seen.insert(image.item.as_str()) {
                report.images_present += 1;
                continue;
            }
            let meta = StoredImage {
                item: image.item.clone(),
                file: image.file.clone(),
                source: if archive.pack.is_some() {
                    "pack"
                } else {
                    "import"
                }
                .into(),
                pack: archive.pack.as_ref().map(|p| p.id.clone()),
                order: base_order + n as u64,
                added_at: now.to_string(),
                generator: None,
                requested_tags: Vec::new(),
            };
            image_rows.push((
                JsValue::from_str(&image.item),
                to_js(&meta)?,
                blob(&image.bytes)?,
            ));
            report.images_added += 1;
        }
        let pack_row = match &archive.pack {
            Some(p) => Some((JsValue::from_str(&p.id), to_js(p)?)),
            None => None,
        };
        self.write(
            "nothing was imported",
            &[IMAGES, BLOBS, LABELS, PACKS],
            |tx| {
                for (key, meta, blob) in &image_rows {
                    put(tx, IMAGES, meta, key)?;
                    put(tx, BLOBS, blob, key)?;
                }
                for (key, value) in &label_rows {
                    put(tx, LABELS, value, key)?;
                }
                if let Some((key, value)) = &pack_row {
                    put(tx, PACKS, value, key)?;
                }
                Ok(())
            },
        )
        .await?;
        Ok(report)
    }

    /// Deletes everything: images, labels, predictions, packs (settings and imported weights
    /// stay).
    pub async fn clear(&self) -> Result<(), String> {
        let stores = [IMAGES, BLOBS, LABELS, PREDICTIONS, PACKS];
        self.write("the store was not cleared", &stores, |tx| {
            for name in stores {
                tx.object_store(name)
                    .and_then(|s| s.clear())
                    .map(drop)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
    }
}

/// Queues a put; its outcome arrives with the transaction's.
fn put(tx: &idb::Transaction, store: &str, value: &JsValue, key: &JsValue) -> Result<(), String> {
    tx.object_store(store)
        .and_then(|s| s.put(value, Some(key)))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `bytes` as a `Blob`.
fn blob(bytes: &[u8]) -> Result<JsValue, String> {
    let array = js_sys::Uint8Array::from(bytes);
    web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&array))
        .map(Into::into)
        .map_err(|e| {
            format!(
                "cannot hold an image in memory: {}",
                crate::browser::js_error(&e)
            )
        })
}
