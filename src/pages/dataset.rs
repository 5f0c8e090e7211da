//! The Dataset page: what is in the label store and how far the experts agree (percent
//! agreement, Cohen's kappa per pair, Fleiss' kappa, per tag), the consensus and the images to
//! review; exports the training set for `synthscope train realism --labels`.

use labels::agreement::Agreement;
use labels::exchange::{self, Image as PackImage};
use leptos::prelude::*;

use crate::browser;
use crate::store::Store;

/// A statistic, or a dash when it is undefined.
fn stat(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.3}"))
}

/// The Dataset page. `visits` changes whenever the page is shown, so it re-reads the store.
#[component]
pub fn DatasetPage(
    /// Changes each time the page is shown.
    visits: ReadSignal<usize>,
) -> impl IntoView {
    let stats: RwSignal<Option<Agreement>, LocalStorage> = RwSignal::new_local(None);
    let counts = RwSignal::new((0usize, 0usize));
    let error = RwSignal::new(None::<String>);
    let message = RwSignal::new(None::<String>);
    let files: RwSignal<std::collections::HashMap<String, String>> =
        RwSignal::new(std::collections::HashMap::new());

    Effect::new(move |_| {
        visits.get();
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                let images = store.images().await?;
                let labels = store.labels().await?;
                Ok::<_, String>((images, labels))
            }
            .await;
            match result {
                Ok((images, stored)) => {
                    let all: Vec<labels::Label> = stored.into_iter().map(|s| s.label).collect();
                    counts.set((images.len(), all.len()));
                    files.set(images.into_iter().map(|i| (i.item, i.file)).collect());
                    stats.set(Some(labels::agreement(&all)));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    });

    // Every label with its image: what `train realism --labels` reads.
    let export_training = move || {
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                let stored = store.labels().await?;
                let all: Vec<labels::Label> = stored.into_iter().map(|s| s.label).collect();
                if all.is_empty() {
                    return Err("there are no labels yet".to_string());
                }
                let items: std::collections::BTreeSet<&str> =
                    all.iter().map(|l| l.item.as_str()).collect();
                let mut images = Vec::new();
                for item in items {
                    let file = files.with_untracked(|f| f.get(item).cloned()).unwrap_or_default();
                    if let Some(bytes) = store.image_bytes(item).await? {
                        images.push(PackImage::new(&file, bytes));
                    }
                }
                let zip = exchange::write_export(&all, &images).map_err(|e| e.to_string())?;
                browser::download(&zip, "training-set.zip", "application/zip")?;
                Ok(format!(
                    "training-set.zip: {} labels, {} images. Fine-tune with: synthscope train realism --labels training-set.zip --init realism-v1.bin --out realism-r2.bin",
                    all.len(),
                    images.len()
                ))
            }
            .await;
            match result {
                Ok(m) => message.set(Some(m)),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    view! {
        <section class="page dataset">
            <h2>"Dataset"</h2>
            {move || error.get().map(|e| view! { <p class="error" role="alert" id="dataset-error">{e}</p> })}
            {move || message.get().map(|m| view! { <p class="notice" id="dataset-message">{m}</p> })}
            {move || stats.get().map(|s| {
                let (n_images, n_labels) = counts.get();
                let decided = s.consensus.iter().filter(|c| c.realistic.is_some()).count();
                let ties = s.consensus.iter().filter(|c| c.tie).count();
                let file_of = move |item: &str| files.with(|f| f.get(item).cloned()).unwrap_or_else(|| format!("{}…", &item[..12]));
                view! {
                    <p id="dataset-summary" data-images=n_images data-labels=n_labels data-annotators=s.annotators.len()>
                        {format!("{n_images} images, {n_labels} labels by {} annotators ({}); {} images labelled by two or more.",
                            s.annotators.len(), s.annotators.join(", "), s.compared_items)}
                    </p>
                    <h3>"Agreement on realistic / fake / unsure"</h3>
                    <table class="stats" id="agreement"
                        data-percent=stat(s.percent_agreement) data-cohen=stat(s.cohen_kappa) data-fleiss=stat(s.fleiss_kappa)>
                        <tr><td>"Percent agreement (mean over pairs)"</td><td>{stat(s.percent_agreement)}</td></tr>
                        <tr><td>"Cohen's kappa (mean over pairs)"</td><td>{stat(s.cohen_kappa)}</td></tr>
                        <tr><td>"Fleiss' kappa (all annotators)"</td><td>{stat(s.fleiss_kappa)}</td></tr>
                    </table>
                    <h3>"Pairs"</h3>
                    <table class="stats" id="agreement-pairs">
                        <tr><th>"annotators"</th><th>"images in common"</th><th>"agreement"</th><th>"Cohen's κ"</th></tr>
                        {s.cohen_kappa_pairs.iter().map(|p| view! {
                            <tr><td>{format!("{} – {}", p.a, p.b)}</td><td>{p.items}</td><td>{stat(p.percent_agreement)}</td><td>{stat(p.kappa)}</td></tr>
                        }).collect_view()}
                    </table>
                    <h3>"Per tag"</h3>
                    <table class="stats" id="agreement-tags">
                        <tr><th>"tag"</th><th>"given"</th><th>"agreement"</th><th>"Fleiss' κ"</th></tr>
                        {s.per_tag.iter().filter(|t| t.positives > 0).map(|t| view! {
                            <tr><td>{t.tag.clone()}</td><td>{t.positives}</td><td>{stat(t.percent_agreement)}</td><td>{stat(t.fleiss_kappa)}</td></tr>
                        }).collect_view()}
                    </table>
                    <h3>"Consensus"</h3>
                    <p id="consensus" data-decided=decided data-ties=ties>
                        {format!("{decided} images have a majority answer; {ties} are tied; the rest are unsure.")}
                    </p>
                    <h3>{format!("To review ({})", s.conflicts.len())}</h3>
                    <ul id="conflicts">
                        {s.conflicts.iter().take(200).map(|item| {
                            let c = s.consensus.iter().find(|c| &c.item == item);
                            let votes = c.map(|c| format!("fake {} · realistic {} · unsure {}", c.votes[0], c.votes[1], c.votes[2])).unwrap_or_default();
                            view! { <li data-item=item.clone()>{file_of(item)}": "{votes}</li> }
                        }).collect_view()}
                    </ul>
                }
            })}
            <h3>"Human in the loop"</h3>
            <p class="muted">"Export every label with its image, fine-tune the ensemble with the companion binary, and load the new weights."</p>
            <button type="button" id="export-training" on:click=move |_| export_training()>"Export training set"</button>
        </section>
    }
}
