//! `synthscope serve`: the companion on 127.0.0.1, so that the app (or a script) can hand it a
//! training set and fetch fine-tuned weights without anyone moving files by hand (a lead with a
//! GPU runs it beside the browser).
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /status` | `{"synthscope": version, "init": realism file, "diffusion_init": diffusion file, "jobs": n}` |
//! | `POST /train/realism` | body: a training set (the Dataset page's export, or any label export with images); validated, then `train realism --labels … --init …` runs as a child process. `202 {"job": id}`, or `400 {"error": …}` |
//! | `POST /train/diffusion` | body: the `labels.jsonl` of a `generate saxs` directory, or a zip holding it (the images may come along; training reads the engine parameters); every line checked, then `train diffusion --data … --init …` fine-tunes the scattering generator as a child process. `202 {"job": id}`, or `400 {"error": …}` |
//! | `POST /adapt/grain` | body: a zip of your micrographs (PNG, TIFF or JPEG, at any depth; no masks); then `adapt grain --micrographs … --out …` adapts the grain networks to them as a child process (pseudo-masks, the TEM generator fine-tuned, drawn pairs, the grain networks fine-tuned). `202 {"job": id}`, or `400 {"error": …}` |
//! | `GET /jobs/{id}` | `{"job", "state": "running"/"done"/"failed", "progress": last line, "log": last lines, "error"?, "weights"?: path}` |
//! | `GET /jobs/{id}/weights` | the new weights file once the job is done |
//! | `GET /jobs/{id}/report` | an adaptation's `report.json` once the job is done |
//!
//! Every answer allows any origin (CORS, including Chrome's private-network preflight): the
//! server listens on the loopback interface only, and what it receives is what the page sends.
//! Training runs in a child process of this binary, so the server keeps answering while it runs;
//! both routes share one job runner (`spawn_job`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use serde_json::json;

/// `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port; the address is printed on the first line).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// The realism weights every round starts from.
    #[arg(long, default_value = "public/models/realism-v2.bin")]
    init: PathBuf,
    /// The diffusion model every `POST /train/diffusion` fine-tunes.
    #[arg(long, default_value = "public/models/diffusion-v3.bin")]
    diffusion_init: PathBuf,
    /// Arguments of every `train diffusion` run, as one string (`--data`, `--init`, `--out`
    /// and, unless given here, `--val` = a tenth of the set, are set by the server).
    #[arg(
        long,
        default_value = "--epochs 3 --batch 16 --lr 1e-4",
        allow_hyphen_values = true
    )]
    diffusion_args: String,
    /// Arguments of every `adapt grain` run, as one string (`--micrographs` and `--out` are set
    /// by the server), for example "--generator-epochs 10 --device cuda".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    adapt_args: String,
    /// Where job files go (a new temporary directory by default).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Arguments added to every `train realism` run, after `--`, for example
    /// `-- --epochs 3 --device wgpu`.
    #[arg(last = true)]
    train_args: Vec<String>,
}

/// Largest training set accepted (as the app's imports).
const MAX_BODY_BYTES: u64 = labels::exchange::MAX_BYTES;
/// Lines of a job's log kept for `GET /jobs/{id}`.
const LOG_LINES: usize = 40;

/// One fine-tuning run.
#[derive(Debug, Default)]
struct Job {
    state: &'static str,
    log: Vec<String>,
    error: Option<String>,
    weights: Option<PathBuf>,
}

type Jobs = Arc<Mutex<BTreeMap<u64, Job>>>;

/// Runs the server until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<()> {
    anyhow::ensure!(
        args.init.is_file(),
        "--init {}: no such weights file (give the realism file every round starts from)",
        args.init.display()
    );
    let work = match &args.work {
        Some(w) => {
            std::fs::create_dir_all(w).with_context(|| format!("cannot create {}", w.display()))?;
            w.clone()
        }
        None => {
            let w = std::env::temp_dir().join(format!("synthscope-serve-{}", std::process::id()));
            std::fs::create_dir_all(&w)
                .with_context(|| format!("cannot create {}", w.display()))?;
            w
        }
    };
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    // The first line is the address (tests and scripts read it).
    println!("listening on http://{addr}");
    eprintln!(
        "training sets go to {}; rounds start from {}",
        work.display(),
        args.init.display()
    );
    let jobs: Jobs = Arc::default();
    for mut request in server.incoming_requests() {
        let response = answer(&mut request, args, &work, &jobs);
        if let Err(e) = request.respond(response) {
            eprintln!("a reply was not delivered: {e}");
        }
    }
    Ok(())
}

type Reply = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

/// A reply with the CORS headers every answer carries.
fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    // A Content-Length always (tiny_http would switch big bodies to chunked encoding).
    let mut r = tiny_http::Response::from_data(body)
        .with_status_code(status)
        .with_chunked_threshold(usize::MAX);
    for h in [
        header("Content-Type", content_type),
        header("Access-Control-Allow-Origin", "*"),
        header("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        header("Access-Control-Allow-Headers", "content-type"),
        header("Access-Control-Allow-Private-Network", "true"),
    ]
    .into_iter()
    .flatten()
    {
        r.add_header(h);
    }
    r
}

fn json_reply(status: u16, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string().into_bytes())
}

fn error_reply(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

fn answer(request: &mut tiny_http::Request, args: &ServeArgs, work: &Path, jobs: &Jobs) -> Reply {
    let method = request.method().clone();
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, parts.as_slice()) {
        (tiny_http::Method::Options, _) => reply(204, "text/plain", Vec::new()),
        (tiny_http::Method::Get, ["status"]) => {
            let n = jobs.lock().map(|j| j.len()).unwrap_or(0);
            json_reply(
                200,
                &json!({
                    "synthscope": env!("CARGO_PKG_VERSION"),
                    "init": args.init.display().to_string(),
                    "diffusion_init": args.diffusion_init.display().to_string(),
                    "jobs": n,
                }),
            )
        }
        (tiny_http::Method::Post, [verb @ ("train" | "adapt"), what]) => {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_BODY_BYTES + 1)
                .read_to_end(&mut body);
            if let Err(e) = read {
                return error_reply(400, &format!("the training set could not be read: {e}"));
            }
            if body.len() as u64 > MAX_BODY_BYTES {
                return error_reply(
                    413,
                    &format!("the training set is over {} GiB", MAX_BODY_BYTES >> 30),
                );
            }
            let started = match (*verb, *what) {
                ("train", "realism") => start_realism(&body, args, work, jobs),
                ("train", "diffusion") => start_diffusion(&body, args, work, jobs),
                ("adapt", "grain") => start_adapt_grain(&body, args, work, jobs),
                _ => return error_reply(404, &format!("unknown request: POST /{verb}/{what}")),
            };
            match started {
                Ok(id) => json_reply(202, &json!({ "job": id })),
                Err(e) => error_reply(400, &format!("{e:#}")),
            }
        }
        (tiny_http::Method::Get, ["jobs", id]) => match id.parse::<u64>() {
            Ok(id) => match jobs.lock() {
                Ok(all) => match all.get(&id) {
                    Some(job) => json_reply(200, &job_json(id, job)),
                    None => error_reply(404, &format!("there is no job {id}")),
                },
                Err(_) => error_reply(500, "the job list is unavailable"),
            },
            Err(_) => error_reply(404, &format!("{id} is not a job number")),
        },
        (tiny_http::Method::Get, ["jobs", id, what @ ("weights" | "report")]) => {
            let file = id
                .parse::<u64>()
                .ok()
                .and_then(|id| jobs.lock().ok()?.get(&id)?.weights.clone())
                .map(|w| {
                    if *what == "report" {
                        w.with_file_name("report.json")
                    } else {
                        w
                    }
                });
            let content_type = if *what == "report" {
                "application/json"
            } else {
                "application/octet-stream"
            };
            match file.map(std::fs::read) {
                Some(Ok(bytes)) => reply(200, content_type, bytes),
                Some(Err(e)) => error_reply(404, &format!("that job has no {what}: {e}")),
                None => error_reply(404, &format!("no {what} for that job (yet)")),
            }
        }
        _ => error_reply(
            404,
            "unknown request: use GET /status, POST /train/realism, POST /train/diffusion, POST /adapt/grain, GET /jobs/{id}, GET /jobs/{id}/weights, GET /jobs/{id}/report",
        ),
    }
}

fn job_json(id: u64, job: &Job) -> serde_json::Value {
    let mut v = json!({
        "job": id,
        "state": job.state,
        "progress": job.log.last().cloned().unwrap_or_default(),
        "log": job.log,
    });
    if let Some(e) = &job.error {
        v["error"] = json!(e);
    }
    if job.weights.is_some() {
        v["weights"] = json!(format!("/jobs/{id}/weights"));
    }
    v
}

/// The next job number and its directory (created).
fn new_job_dir(work: &Path, jobs: &Jobs) -> Result<(u64, PathBuf)> {
    let id = {
        let all = jobs
            .lock()
            .map_err(|_| anyhow::anyhow!("the job list is unavailable"))?;
        all.keys().next_back().map_or(1, |k| k + 1)
    };
    let dir = work.join(format!("job-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok((id, dir))
}

/// Checks a realism training set, writes it to the job's directory and starts the round.
fn start_realism(body: &[u8], args: &ServeArgs, work: &Path, jobs: &Jobs) -> Result<u64> {
    let archive = labels::exchange::read("training set", body)?;
    anyhow::ensure!(
        !archive.labels.is_empty() && !archive.images.is_empty(),
        "the training set needs labels and their images (export it from the Dataset page)"
    );
    let (id, dir) = new_job_dir(work, jobs)?;
    let set = dir.join("training-set.zip");
    std::fs::write(&set, body).with_context(|| format!("cannot write {}", set.display()))?;
    let out = dir.join(format!("realism-r{}.bin", id + 1));
    let mut train = vec![
        "train".into(),
        "realism".into(),
        "--labels".into(),
        set.clone().into_os_string(),
        "--init".into(),
        args.init.clone().into_os_string(),
        "--out".into(),
        out.clone().into_os_string(),
    ];
    train.extend(args.train_args.iter().map(Into::into));
    eprintln!(
        "job {id}: fine-tuning realism on {} ({} labels)",
        set.display(),
        archive.labels.len()
    );
    let first = format!(
        "job {id}: {} labels, {} images",
        archive.labels.len(),
        archive.images.len()
    );
    spawn_job(id, &train, out, first, jobs)?;
    Ok(id)
}

/// Writes the `labels.jsonl` of a `generate saxs` set (bare, or found in a zip) to the job's
/// directory, checks every line and starts fine-tuning the diffusion model on it.
fn start_diffusion(body: &[u8], args: &ServeArgs, work: &Path, jobs: &Jobs) -> Result<u64> {
    anyhow::ensure!(
        args.diffusion_init.is_file(),
        "this server has no diffusion model to fine-tune ({} is missing): restart it with \
         --diffusion-init FILE",
        args.diffusion_init.display()
    );
    let lines = saxs_labels(body)?;
    let (id, dir) = new_job_dir(work, jobs)?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    std::fs::write(data.join("labels.jsonl"), &lines)
        .with_context(|| format!("cannot write {}", data.display()))?;
    let count = crate::diffusion_data::check_dir(&data).context("the training set")?;
    anyhow::ensure!(
        count >= 2,
        "the training set has {count} image(s): fine-tuning needs at least 2 (one is held out)"
    );
    let out = dir.join(format!("diffusion-j{id}.bin"));
    let extra: Vec<&str> = args.diffusion_args.split_whitespace().collect();
    let mut train: Vec<std::ffi::OsString> = vec![
        "train".into(),
        "diffusion".into(),
        "--data".into(),
        data.into_os_string(),
        "--init".into(),
        args.diffusion_init.clone().into_os_string(),
        "--out".into(),
        out.clone().into_os_string(),
    ];
    if !extra.contains(&"--val") {
        train.extend([
            "--val".into(),
            (count / 10).clamp(1, 200).to_string().into(),
        ]);
    }
    train.extend(extra.iter().map(Into::into));
    eprintln!(
        "job {id}: fine-tuning {} on {count} engine images",
        args.diffusion_init.display()
    );
    let first = format!("job {id}: {count} engine images (generate saxs parameters)");
    spawn_job(id, &train, out, first, jobs)?;
    Ok(id)
}

/// Most micrographs one adaptation takes.
const MAX_MICROGRAPHS: usize = 10_000;

/// Unpacks a zip of micrographs to the job's directory and starts `adapt grain` on them.
fn start_adapt_grain(body: &[u8], args: &ServeArgs, work: &Path, jobs: &Jobs) -> Result<u64> {
    anyhow::ensure!(
        body.starts_with(b"PK"),
        "send your micrographs as one zip (PNG, TIFF or JPEG files; no masks needed)"
    );
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body))
        .context("the micrographs are not a readable zip")?;
    let names: Vec<String> = zip
        .file_names()
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            !n.ends_with('/')
                && [".png", ".tif", ".tiff", ".jpg", ".jpeg"]
                    .iter()
                    .any(|e| lower.ends_with(e))
        })
        .map(str::to_string)
        .collect();
    anyhow::ensure!(
        !names.is_empty(),
        "the zip holds no PNG, TIFF or JPEG micrographs"
    );
    anyhow::ensure!(
        names.len() <= MAX_MICROGRAPHS,
        "the zip holds {} micrographs; one adaptation takes at most {MAX_MICROGRAPHS}",
        names.len()
    );
    let (id, dir) = new_job_dir(work, jobs)?;
    let micrographs = dir.join("micrographs");
    std::fs::create_dir_all(&micrographs)
        .with_context(|| format!("cannot create {}", micrographs.display()))?;
    let mut unpacked = 0u64;
    for (i, name) in names.iter().enumerate() {
        let entry = zip
            .by_name(name)
            .with_context(|| format!("the zip's {name} cannot be read"))?;
        let mut bytes = Vec::new();
        entry
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("the zip's {name} cannot be read"))?;
        unpacked += bytes.len() as u64;
        anyhow::ensure!(
            unpacked <= MAX_BODY_BYTES,
            "the micrographs are over {} GiB unpacked",
            MAX_BODY_BYTES >> 30
        );
        // Flat, numbered names: nothing in the zip can write outside the job's directory.
        let base: String = Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = micrographs.join(format!("{i:05}-{base}"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let out = dir.join("adapted");
    let mut adapt: Vec<std::ffi::OsString> = vec![
        "adapt".into(),
        "grain".into(),
        "--micrographs".into(),
        micrographs.into_os_string(),
        "--out".into(),
        out.clone().into_os_string(),
    ];
    adapt.extend(args.adapt_args.split_whitespace().map(Into::into));
    eprintln!(
        "job {id}: adapting the grain networks to {} micrographs",
        names.len()
    );
    let first = format!("job {id}: {} micrographs", names.len());
    spawn_job(id, &adapt, out.join("grain.bin"), first, jobs)?;
    Ok(id)
}

/// The `labels.jsonl` text of a diffusion training set: the body itself, or the one
/// `labels.jsonl` (at any depth) of a zip.
fn saxs_labels(body: &[u8]) -> Result<Vec<u8>> {
    anyhow::ensure!(
        !body.is_empty(),
        "the training set is empty: send the labels.jsonl of a `synthscope generate saxs` \
         directory, or a zip of that directory"
    );
    if !body.starts_with(b"PK") {
        anyhow::ensure!(
            std::str::from_utf8(body).is_ok(),
            "the training set is neither a zip nor a labels.jsonl text file"
        );
        return Ok(body.to_vec());
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body))
        .context("the training set is not a readable zip")?;
    let names: Vec<String> = zip
        .file_names()
        .filter(|n| *n == "labels.jsonl" || n.ends_with("/labels.jsonl"))
        .map(str::to_string)
        .collect();
    let [name] = names.as_slice() else {
        anyhow::bail!(
            "the zip holds {} labels.jsonl files: it needs exactly one (zip one `generate saxs` \
             directory)",
            names.len()
        );
    };
    let entry = zip
        .by_name(name)
        .with_context(|| format!("the zip's {name} cannot be read"))?;
    let mut text = Vec::new();
    entry
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("the zip's {name} cannot be read"))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_BODY_BYTES,
        "the zip's {name} is over {} GiB unpacked",
        MAX_BODY_BYTES >> 30
    );
    Ok(text)
}

/// Runs this binary with `train_args` in the background as job `id`, keeping the last lines of
/// its progress output and, when it succeeds, the weights file `out`.
fn spawn_job(
    id: u64,
    train_args: &[std::ffi::OsString],
    out: PathBuf,
    first_line: String,
    jobs: &Jobs,
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this program to run the training")?;
    let mut child = Command::new(exe)
        .args(train_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the training run")?;
    let stderr = child
        .stderr
        .take()
        .context("no output from the training run")?;
    jobs.lock()
        .map_err(|_| anyhow::anyhow!("the job list is unavailable"))?
        .insert(
            id,
            Job {
                state: "running",
                log: vec![first_line],
                ..Job::default()
            },
        );
    let jobs = jobs.clone();
    std::thread::spawn(move || {
        // Progress bars redraw with carriage returns: every redraw is a line here.
        let mut reader = BufReader::new(stderr);
        let mut chunk = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut chunk) {
            if n == 0 {
                break;
            }
            for piece in String::from_utf8_lossy(&chunk).split('\r') {
                let line = strip_ansi(piece.trim());
                if !line.is_empty()
                    && let Ok(mut all) = jobs.lock()
                    && let Some(job) = all.get_mut(&id)
                {
                    job.log.push(line);
                    let extra = job.log.len().saturating_sub(LOG_LINES);
                    job.log.drain(..extra);
                }
            }
            chunk.clear();
        }
        let status = child.wait();
        if let Ok(mut all) = jobs.lock()
            && let Some(job) = all.get_mut(&id)
        {
            match status {
                Ok(s) if s.success() && out.is_file() => {
                    job.state = "done";
                    job.weights = Some(out.clone());
                    eprintln!("job {id}: done, {}", out.display());
                }
                Ok(s) => {
                    job.state = "failed";
                    job.error = Some(format!(
                        "training stopped ({s}): {}",
                        job.log.last().cloned().unwrap_or_default()
                    ));
                    eprintln!("job {id}: failed");
                }
                Err(e) => {
                    job.state = "failed";
                    job.error = Some(format!("the training run was lost: {e}"));
                }
            }
        }
    });
    Ok(())
}

/// `text` without terminal colour codes (ESC [ … letter).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[1;34mepoch\u{1b}[0m 1/3"), "epoch 1/3");
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
