//! `conductor sessions`: the saved conversations of `chat` and `ask`, listed, shown, exported
//! as Markdown, renamed and removed. A session is named by its id, a unique id prefix, or its
//! name; one that matches nothing, or several, is a usage error (exit 2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use conductor_core::Role;
use conductor_core::files::{Existing, write_private};
use conductor_core::session::{Damaged, Listed, Session, SessionStore};
use conductor_core::text::one_line;
use serde_json::json;

use super::conversation::failure;
use crate::cli::{SessionsArgs, SessionsCommand};
use crate::exit::Failure;
use crate::output::{self, errln, outln};

/// Runs the command.
pub fn run(args: SessionsArgs) -> Result<ExitCode, Failure> {
    let store = match args.sessions_dir {
        Some(dir) => SessionStore::new(dir),
        None => SessionStore::default_location().map_err(failure)?,
    };
    match args.command {
        SessionsCommand::List { json } => list(&store, json),
        SessionsCommand::Show { session, json } => show(&store, &session, json),
        SessionsCommand::Export {
            session,
            md: _,
            output,
            force,
        } => export(&store, &session, output.as_deref(), force),
        SessionsCommand::Rename { session, name } => rename(&store, &session, &name),
        SessionsCommand::Rm {
            sessions,
            force,
            all,
            yes,
        } => remove(&store, &sessions, force, all, yes),
    }
}

fn list(store: &SessionStore, json: bool) -> Result<ExitCode, Failure> {
    let all = store.scan().map_err(failure)?;
    if json {
        let rows: Vec<serde_json::Value> = all.iter().map(|l| listed_json(store, l)).collect();
        outln!("{:#}", serde_json::Value::Array(rows))?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        errln!("no saved conversations in {}", store.dir().display());
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now();
    let rows: Vec<[String; 7]> = all.iter().map(|l| listed_row(l, now)).collect();
    let header = ["ID", "NAME", "ORIGIN", "MODEL", "MSGS", "UPDATED", "TITLE"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == 6 {
                text.push_str(cell);
            } else if i == 4 {
                text.push_str(&format!("{cell:>width$}  "));
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    outln!("{}", line(header))?;
    for row in &rows {
        outln!("{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `list`: names, titles and models come from files, so they are shown on one line
/// without control characters.
fn listed_row(listed: &Listed, now: SystemTime) -> [String; 7] {
    match listed {
        Listed::Session(s) => [
            s.id.clone(),
            s.name
                .as_deref()
                .map_or("-".into(), |n| one_line(n).into_owned()),
            s.origin.to_string(),
            one_line(&s.models.join(", ")).into_owned(),
            s.messages.to_string(),
            s.age_at(now)
                .map_or_else(|| one_line(&s.updated).into_owned(), ago),
            one_line(&s.title).into_owned(),
        ],
        Listed::Damaged(d) => [
            d.id.clone(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            modified_ago(d, now),
            if d.newer {
                "(written by a newer conductor; left alone)".into()
            } else {
                format!("(damaged: {})", one_line(&d.reason))
            },
        ],
    }
}

fn modified_ago(d: &Damaged, now: SystemTime) -> String {
    d.modified
        .as_deref()
        .and_then(|m| conductor_core::session::age(m, now))
        .map_or_else(|| "-".into(), ago)
}

fn listed_json(store: &SessionStore, listed: &Listed) -> serde_json::Value {
    match listed {
        Listed::Session(s) => json!({
            "id": s.id,
            "name": s.name,
            "origin": s.origin.as_str(),
            "models": s.models,
            "personality": s.personality,
            "messages": s.messages,
            "created": s.created,
            "updated": s.updated,
            "title": s.title,
            "path": store.path(&s.id),
            "damaged": false,
        }),
        Listed::Damaged(d) => json!({
            "id": d.id,
            "path": d.path,
            "damaged": !d.newer,
            "newer_format": d.newer,
            "reason": d.reason,
            "modified": d.modified,
        }),
    }
}

/// `5 s ago`, `3 min ago`, `2 h ago`, `4 days ago`, then weeks and months.
fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..86_400 => format!("{} h ago", s / 3_600),
        86_400..172_800 => "yesterday".to_owned(),
        172_800..1_209_600 => format!("{} days ago", s / 86_400),
        1_209_600..5_184_000 => format!("{} weeks ago", s / 604_800),
        _ => format!("{} months ago", s / 2_592_000),
    }
}

/// The session `query` names, read.
fn load(store: &SessionStore, query: &str) -> Result<(Session, PathBuf), Failure> {
    match store.resolve(query).map_err(failure)? {
        Listed::Session(summary) => {
            let session = store.load(&summary.id).map_err(failure)?;
            Ok((session, store.path(&summary.id)))
        }
        Listed::Damaged(d) => Err(damaged(&d)),
    }
}

fn damaged(d: &Damaged) -> Failure {
    let what = if d.newer {
        "was written by a newer conductor".to_owned()
    } else {
        format!("is damaged ({})", one_line(&d.reason))
    };
    Failure::other(format!(
        "session {} {what}; the file is {}",
        d.id,
        d.path.display()
    ))
}

fn show(store: &SessionStore, query: &str, json: bool) -> Result<ExitCode, Failure> {
    if json {
        // The stored file, byte for byte.
        let (_, path) = load(store, query)?;
        let bytes =
            std::fs::read(&path).map_err(|e| Failure::other(format!("{}: {e}", path.display())))?;
        output::write_out(format_args!("{}", String::from_utf8_lossy(&bytes)))?;
        return Ok(ExitCode::SUCCESS);
    }
    let (session, _) = load(store, query)?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let name = session
        .name
        .as_deref()
        .map(|n| format!(" '{}'", one_line(n)))
        .unwrap_or_default();
    outln!(
        "Session {}{name} ({}), {} messages, started {}, updated {}",
        session.id,
        session.origin,
        session.messages.len(),
        utc_time(&session.created),
        utc_time(&session.updated)
    )?;
    if let Some(system) = &session.system {
        outln!("System text: {}", one_line(system))?;
    }
    for message in &session.messages {
        let heading = match message.role {
            Role::User => "You".to_owned(),
            Role::Assistant => answer_heading(message),
            other => other.to_string(),
        };
        outln!()?;
        outln!("── {} ──", one_line(&heading))?;
        let text = output::for_terminal(&message.content, terminal);
        outln!("{}", text.trim_end())?;
        if message.incomplete {
            outln!("[incomplete: the answer was cut short]")?;
        }
        if message.unanswered {
            outln!("[not answered: sent again with the next question]")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `llama3.2:3b · yollayah`; answers saved before models were recorded say so.
fn answer_heading(message: &conductor_core::session::SessionMessage) -> String {
    let model = message.model.as_deref().unwrap_or("model not recorded");
    match &message.personality {
        Some(personality) => format!("{model} · {personality}"),
        None if message.model.is_some() => format!("{model} · no personality"),
        None => model.to_owned(),
    }
}

fn utc_time(rfc3339: &str) -> String {
    // Shown as stored (UTC, RFC 3339) minus the seconds' fraction: the same on every machine.
    let text = one_line(rfc3339);
    match text.split_once('.') {
        Some((head, _)) => format!("{}Z", head.replace('T', " ")),
        None => text.replace('T', " "),
    }
}

fn export(
    store: &SessionStore,
    query: &str,
    to: Option<&Path>,
    force: bool,
) -> Result<ExitCode, Failure> {
    if let Some(path) = to
        && !force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(Failure::UsageHint(
            format!("{} exists", path.display()),
            "add --force to replace it, or give another -o FILE".to_owned(),
        ));
    }
    let (session, _) = load(store, query)?;
    let markdown = markdown(&session);
    match to {
        None => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            output::write_out(format_args!(
                "{}",
                output::for_terminal(&markdown, terminal)
            ))?;
        }
        Some(path) => {
            let existing = if force {
                Existing::Replace
            } else {
                Existing::Keep
            };
            write_private(path, markdown.as_bytes(), existing).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Failure::UsageHint(
                        format!("{} exists", path.display()),
                        "add --force to replace it, or give another -o FILE".to_owned(),
                    )
                } else {
                    Failure::other(format!("cannot write {}: {e}", path.display()))
                }
            })?;
            errln!("exported {} to {}", session.id, path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The conversation as Markdown: a title, the facts, then one heading per question and per
/// answer (with its model and personality). Answers are copied as they are, code blocks and
/// all; a fence left open by an answer cut short is closed so the rest stays readable.
pub fn markdown(session: &Session) -> String {
    let mut out = String::new();
    let title = session.name.clone().unwrap_or_else(|| session.title(80));
    out.push_str(&format!("# {}\n\n", one_line(&title)));
    out.push_str(&format!(
        "- Session: `{}` ({}), started {}, updated {}\n",
        session.id,
        session.origin,
        utc_time(&session.created),
        utc_time(&session.updated)
    ));
    out.push_str(&format!(
        "- Models: {}\n",
        one_line(&session.models().join(", "))
    ));
    if let Some(system) = &session.system {
        out.push_str(&format!("- System text: {}\n", one_line(system)));
    }
    let mut question = 0;
    for message in &session.messages {
        let heading = match message.role {
            Role::User => {
                question += 1;
                format!("Question {question}")
            }
            Role::Assistant => format!("Answer · {}", answer_heading(message)),
            other => other.to_string(),
        };
        out.push_str(&format!("\n## {}\n\n", one_line(&heading)));
        let content = message.content.trim_end();
        out.push_str(content);
        out.push('\n');
        if let Some(fence) = open_fence(content) {
            out.push_str(&fence);
            out.push('\n');
        }
        if message.incomplete {
            out.push_str("\n*(This answer was cut short.)*\n");
        }
        if message.unanswered {
            out.push_str("\n*(This question got no answer.)*\n");
        }
    }
    out
}

/// The fence that closes a code block `text` leaves open, if it does.
fn open_fence(text: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        if line.len() - trimmed.len() > 3 {
            continue;
        }
        let fence_char = match trimmed.chars().next() {
            Some(c @ ('`' | '~')) => c,
            _ => continue,
        };
        let run: String = trimmed.chars().take_while(|c| *c == fence_char).collect();
        if run.chars().count() < 3 {
            continue;
        }
        match &open {
            None => open = Some(run),
            Some(opening)
                if opening.starts_with(fence_char)
                    && run.len() >= opening.len()
                    && trimmed[run.len()..].trim().is_empty() =>
            {
                open = None;
            }
            Some(_) => {}
        }
    }
    open
}

fn rename(store: &SessionStore, query: &str, name: &str) -> Result<ExitCode, Failure> {
    let id = store.resolve(query).map_err(failure)?.id().to_owned();
    let session = store.rename(&id, Some(name)).map_err(failure)?;
    outln!("{} is now named '{}'", session.id, one_line(name))?;
    Ok(ExitCode::SUCCESS)
}

fn remove(
    store: &SessionStore,
    queries: &[String],
    force: bool,
    all: bool,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let targets: Vec<Listed> = if all {
        let every = store.scan().map_err(failure)?;
        if !yes && !every.is_empty() {
            return Err(Failure::Usage(format!(
                "`sessions rm --all` deletes {} saved conversations in {}: add --yes to confirm",
                every.len(),
                store.dir().display()
            )));
        }
        every
    } else {
        // Every name is checked before anything is deleted: a typo deletes nothing.
        let mut found: Vec<Listed> = Vec::new();
        for query in queries {
            let listed = store.resolve(query).map_err(failure)?;
            refuse_short_prefix(query, &listed)?;
            if !found.iter().any(|f| f.id() == listed.id()) {
                found.push(listed);
            }
        }
        found
    };
    let mut refused = Vec::new();
    for target in &targets {
        match store.remove(target.id(), force) {
            Ok(_) => {
                let name = target
                    .name()
                    .map(|n| format!(" ({})", one_line(n)))
                    .unwrap_or_default();
                outln!("removed {}{name}", target.id())?;
            }
            Err(err) => refused.push(failure(err)),
        }
    }
    match refused.len() {
        0 => Ok(ExitCode::SUCCESS),
        1 => Err(refused.remove(0)),
        n => {
            for failure in &refused {
                errln!("error: {}", failure.message());
            }
            Err(Failure::other(format!("{n} sessions were not removed")))
        }
    }
}

/// The shortest id prefix `rm` accepts: deleting needs more than a digit or two.
const RM_PREFIX_MIN: usize = 8;

/// `rm` takes a full id, a name, or an id prefix of at least [`RM_PREFIX_MIN`] characters.
fn refuse_short_prefix(query: &str, listed: &Listed) -> Result<(), Failure> {
    let exact = listed.id() == query || listed.name() == Some(query);
    if exact || query.chars().count() >= RM_PREFIX_MIN {
        return Ok(());
    }
    Err(Failure::UsageHint(
        format!(
            "'{}' is only the start of the id {}: `sessions rm` needs the whole id, the name, or at \
             least {RM_PREFIX_MIN} characters of the id",
            one_line(query),
            listed.id()
        ),
        format!("to delete it: conductor sessions rm {}", listed.id()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::Message;
    use conductor_core::session::SessionMessage;

    #[test]
    fn ages_read_like_people_say_them() {
        assert_eq!(ago(Duration::from_secs(5)), "just now");
        assert_eq!(ago(Duration::from_secs(150)), "2 min ago");
        assert_eq!(ago(Duration::from_secs(7_200)), "2 h ago");
        assert_eq!(ago(Duration::from_secs(90_000)), "yesterday");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
        assert_eq!(ago(Duration::from_secs(21 * 86_400)), "3 weeks ago");
        assert_eq!(ago(Duration::from_secs(100 * 86_400)), "3 months ago");
    }

    #[test]
    fn open_fences_are_found() {
        assert_eq!(open_fence("text\n```rust\nfn main() {}\n```\n"), None);
        assert_eq!(open_fence("```rust\nfn main() {"), Some("```".into()));
        assert_eq!(
            open_fence("~~~~\nx\n~~~"),
            Some("~~~~".into()),
            "too short to close"
        );
        assert_eq!(open_fence("````\n```\n````"), None);
        assert_eq!(open_fence("    ```\nindented code"), None);
    }

    #[test]
    fn markdown_keeps_code_and_closes_what_a_cut_answer_left_open() {
        let mut session = Session::new("m", "p");
        session.messages = vec![
            Message::user("Show code").into(),
            SessionMessage::answer(
                Message::assistant("Here:\n\n```rust\nfn main() {}\n```\n"),
                "llama3.2:3b",
                "yollayah",
            ),
            Message::user("More").into(),
            SessionMessage::answer(
                Message {
                    incomplete: true,
                    ..Message::assistant("```py\nprint(")
                },
                "qwen3:8b",
                "forge",
            ),
        ];
        let md = markdown(&session);
        assert!(md.starts_with("# Show code\n"), "{md}");
        assert!(md.contains("## Question 1\n\nShow code\n"), "{md}");
        assert!(
            md.contains(
                "## Answer · llama3.2:3b · yollayah\n\nHere:\n\n```rust\nfn main() {}\n```\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("## Answer · qwen3:8b · forge\n\n```py\nprint(\n```\n\n*(This answer was cut short.)*\n"),
            "{md}"
        );
    }
}
