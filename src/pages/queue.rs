//! One file queue for the pages that work through images one at a time in the compute worker
//! (Segment, Classify; ready for the generators' pages): the page-wide drop target, the file
//! chooser, the list of images with their state, the status line, and the runner that sends
//! one job at a time to the worker in arrival order. A page supplies what a job is and what to
//! call; everything else is here, so every such page behaves, and is tested, the same way.
//!
//! Element ids follow the page's prefix (`segment`, `classify`): `{prefix}-files` (the chooser),
//! `{prefix}-queue` (the list, one `li` per image with `data-state` queued / running / done /
//! failed), `{prefix}-status` (`data-state` idle / running / done / error, `data-failed`,
//! `data-done`) and `{prefix}-notice` (the selected result's notice).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use leptos::prelude::*;

use crate::browser;

/// Where one image is.
pub enum State<R> {
    /// Waiting for the images before it.
    Queued,
    /// In the worker; the stage it reports.
    Running(String),
    /// Finished.
    Done(Rc<R>),
    /// Could not be processed; the reason, for the user.
    Failed(String),
}

// By hand: `derive` would ask for `R: Clone`, and results are shared, not copied.
impl<R> Clone for State<R> {
    fn clone(&self) -> Self {
        match self {
            State::Queued => State::Queued,
            State::Running(s) => State::Running(s.clone()),
            State::Done(r) => State::Done(r.clone()),
            State::Failed(e) => State::Failed(e.clone()),
        }
    }
}

/// One image in the queue: what came in and where it is.
pub struct Entry<I, R> {
    /// Stable id (the list's order of arrival).
    pub id: usize,
    /// File name shown in the list and in messages.
    pub name: String,
    /// What the page needs to process it again (bytes or pixels, ground truth, …).
    pub input: I,
    /// Where it is.
    pub state: State<R>,
}

impl<I: Clone, R> Clone for Entry<I, R> {
    fn clone(&self) -> Self {
        Entry {
            id: self.id,
            name: self.name.clone(),
            input: self.input.clone(),
            state: self.state.clone(),
        }
    }
}

/// What a page's result shows in the list and the status line.
pub trait Outcome {
    /// One line for the list ("412 grains, 7 iterations").
    fn summary(&self) -> String;
    /// A notice about the input (colour converted to grey), shown in the status line.
    fn notice(&self) -> Option<String> {
        None
    }
}

type Progress = Rc<dyn Fn(String)>;
type Job<R> = Pin<Box<dyn Future<Output = Result<R, String>>>>;
type Runner<I, J, R> = Rc<dyn Fn(I, J, Progress) -> Job<R>>;

/// A page's queue: `I` is what an image brings, `J` what one run of it adds (for example a
/// beam centre the user moved), `R` the result. Copy: every handle is a signal.
pub struct FileQueue<I: 'static, J: 'static, R: 'static> {
    /// Every image that came in, in order.
    pub items: RwSignal<Vec<Entry<I, R>>, LocalStorage>,
    /// The image whose result is shown.
    pub selected: RwSignal<Option<usize>>,
    pending: RwSignal<Vec<(usize, J)>, LocalStorage>,
    running: RwSignal<bool>,
    next_id: StoredValue<usize>,
    run: StoredValue<Runner<I, J, R>, LocalStorage>,
}

impl<I, J, R> Clone for FileQueue<I, J, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, J, R> Copy for FileQueue<I, J, R> {}

impl<I: Clone + 'static, J: 'static, R: 'static> FileQueue<I, J, R> {
    /// A queue whose jobs `run(input, job, progress)` computes (in the worker); `progress`
    /// takes the stage the worker reports.
    pub fn new<F>(run: impl Fn(I, J, Progress) -> F + 'static) -> Self
    where
        F: Future<Output = Result<R, String>> + 'static,
    {
        let run: Runner<I, J, R> = Rc::new(move |i, j, p| Box::pin(run(i, j, p)));
        FileQueue {
            items: RwSignal::new_local(Vec::new()),
            selected: RwSignal::new(None),
            pending: RwSignal::new_local(Vec::new()),
            running: RwSignal::new(false),
            next_id: StoredValue::new(0),
            run: StoredValue::new_local(run),
        }
    }

    /// Adds an image and queues its first run.
    pub fn add(self, name: String, input: I, job: J) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.items.update(|v| {
            v.push(Entry {
                id,
                name,
                input,
                state: State::Queued,
            })
        });
        self.rerun(id, job);
    }

    /// Queues another run of image `id` (its earlier result stays until the new one is in).
    pub fn rerun(self, id: usize, job: J) {
        self.pending.update(|p| p.push((id, job)));
        self.start();
    }

    /// Sets the state of image `id` (for example a failure found by the page itself).
    pub fn set_state(self, id: usize, state: State<R>) {
        self.items.update(|v| {
            if let Some(it) = v.iter_mut().find(|it| it.id == id) {
                it.state = state;
            }
        })
    }

    /// The selected image, when it has a result (tracked).
    pub fn current(self) -> Option<(Entry<I, R>, Rc<R>)> {
        let id = self.selected.get()?;
        self.items.with(|v| {
            v.iter()
                .find(|it| it.id == id)
                .and_then(|it| match &it.state {
                    State::Done(r) => Some((it.clone(), r.clone())),
                    _ => None,
                })
        })
    }

    /// One job at a time, in arrival order, while anything is pending.
    fn start(self) {
        if self.running.get_untracked() {
            return;
        }
        self.running.set(true);
        leptos::task::spawn_local(async move {
            loop {
                let next = self
                    .pending
                    .try_update(|p| (!p.is_empty()).then(|| p.remove(0)))
                    .flatten();
                let Some((id, job)) = next else { break };
                let Some(input) = self
                    .items
                    .with_untracked(|v| v.iter().find(|it| it.id == id).map(|it| it.input.clone()))
                else {
                    continue;
                };
                self.set_state(id, State::Running("waiting for the worker".into()));
                let progress: Progress = Rc::new(move |s| self.set_state(id, State::Running(s)));
                let run = self.run.get_value();
                match run(input, job, progress).await {
                    Ok(r) => {
                        self.set_state(id, State::Done(Rc::new(r)));
                        self.selected.set(Some(id));
                    }
                    Err(e) => self.set_state(id, State::Failed(e)),
                }
            }
            self.running.set(false);
        });
    }
}

/// The page-wide drop target: files dropped anywhere on it are read and handed to `on_files`
/// as (name, bytes); the class gets ` dragging` while files hover over it.
#[component]
pub fn DropTarget(
    /// The page's class and id.
    page: &'static str,
    /// Called with the dropped files.
    on_files: Callback<Vec<(String, Vec<u8>)>, ()>,
    children: Children,
) -> impl IntoView {
    let dragging = RwSignal::new(false);
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            leptos::task::spawn_local(
                async move { on_files.run(browser::read_files(files).await) },
            );
        }
    };
    view! {
        <div
            class=move || if dragging.get() { format!("{page} dragging") } else { page.to_string() }
            id=page
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            {children()}
        </div>
    }
}

/// The file chooser (several files at once), `{prefix}-files`.
#[component]
pub fn FileChooser(
    /// The page's id prefix.
    prefix: &'static str,
    /// The `accept` attribute: endings and MIME types.
    accept: &'static str,
    /// The sentence inside the drop area.
    hint: &'static str,
    /// Called with the chosen files.
    on_files: Callback<Vec<(String, Vec<u8>)>, ()>,
) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        let Some(input) = browser::input_of(&ev) else {
            return;
        };
        if let Some(files) = input.files() {
            leptos::task::spawn_local(async move {
                on_files.run(browser::read_files(files).await);
                // Clear the chooser so that choosing the same file again is a change too.
                input.set_value("");
            });
        }
    };
    view! {
        <label class="drop">
            <input id=format!("{prefix}-files") type="file" multiple accept=accept on:change=on_change />
            <span>{hint}</span>
        </label>
    }
}

/// The list of images, `{prefix}-queue`; a click selects one.
#[component]
pub fn QueueList<I, J, R>(
    /// The page's queue.
    queue: FileQueue<I, J, R>,
    /// The page's id prefix.
    prefix: &'static str,
    /// Shown while the list is empty.
    empty: &'static str,
) -> impl IntoView
where
    I: Clone + 'static,
    J: 'static,
    R: Outcome + 'static,
{
    let selected = queue.selected;
    let rows = move || {
        queue
            .items
            .get()
            .into_iter()
            .map(|it| {
                let id = it.id;
                let (class, text) = match &it.state {
                    State::Queued => ("queued", "queued".to_string()),
                    State::Running(s) => ("running", s.clone()),
                    State::Done(r) => ("done", r.summary()),
                    State::Failed(e) => ("failed", e.clone()),
                };
                view! {
                    <li
                        class=move || format!("{class}{}", if selected.get() == Some(id) { " selected" } else { "" })
                        data-state=class
                        on:click=move |_| selected.set(Some(id))
                    >
                        <strong>{it.name}</strong>
                        <span class="state">{text}</span>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <ul class="queue" id=format!("{prefix}-queue")>{rows}</ul>
        <Show when=move || queue.items.with(|v| v.is_empty())>
            <p class="muted">{empty}</p>
        </Show>
    }
}

/// The status line, `{prefix}-status`: the stage of the running image, how many wait, every
/// failure with its file's name, and the selected result's notice.
#[component]
pub fn QueueStatus<I, J, R>(
    /// The page's queue.
    queue: FileQueue<I, J, R>,
    /// The page's id prefix.
    prefix: &'static str,
) -> impl IntoView
where
    I: Clone + 'static,
    J: 'static,
    R: Outcome + 'static,
{
    move || {
        let all = queue.items.get();
        let running = all.iter().find_map(|it| match &it.state {
            State::Running(s) => Some(format!("{}: {s}…", it.name)),
            _ => None,
        });
        let queued = all
            .iter()
            .filter(|it| matches!(it.state, State::Queued))
            .count();
        let failed: Vec<String> = all
            .iter()
            .filter_map(|it| match &it.state {
                State::Failed(e) => Some(format!("{}: {e}", it.name)),
                _ => None,
            })
            .collect();
        let n_failed = failed.len();
        let n_done = all
            .iter()
            .filter(|it| matches!(it.state, State::Done(_)))
            .count();
        let selected_result = queue.selected.get().and_then(|id| {
            all.iter()
                .find(|it| it.id == id)
                .and_then(|it| match &it.state {
                    State::Done(r) => Some(r.clone()),
                    _ => None,
                })
        });
        let state = if running.is_some() || queued > 0 {
            "running"
        } else if selected_result.is_some() {
            "done"
        } else if n_failed > 0 {
            "error"
        } else {
            "idle"
        };
        let notice = selected_result.and_then(|r| r.notice());
        view! {
            <div id=format!("{prefix}-status") data-state=state data-failed=n_failed data-done=n_done>
                {running.map(|r| view! { <p class="running"><span class="spinner"></span>{r}{if queued > 0 { format!(" ({queued} more queued)") } else { String::new() }}</p> })}
                {failed.into_iter().map(|f| view! { <p class="error" role="alert">{f}</p> }).collect_view()}
                {notice.map(|n| view! { <p class="notice" id=format!("{prefix}-notice")>{n}</p> })}
            </div>
        }
    }
}
