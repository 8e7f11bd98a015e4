//! `echo-iac stack history | export | import`: the stack's state as a
//! document, so that it can be inspected, restored, and moved between
//! backends.

use std::io::Write;

use crate::cli::{ExportArgs, HistoryArgs, ImportArgs};
use crate::error::Error;
use crate::program::Program;
use echo_iac_engine::state::{Locked, State, StateError};

use super::{Session, note, print};

pub(crate) async fn history<P: Program>(
    session: &Session<P>,
    args: HistoryArgs,
) -> Result<(), Error> {
    let store = session.store().await?;
    let revisions = store.history().await?;
    if args.json {
        super::print_document(&revisions);
        return Ok(());
    }
    if revisions.is_empty() {
        print(&format!(
            "Stack {} has no state yet in {}.",
            session.stack.name,
            store.location()
        ));
        return Ok(());
    }
    let mut rows = vec![[
        "SERIAL".to_string(),
        "TIME".to_string(),
        "COMMAND".to_string(),
        "USER@HOST".to_string(),
        "RESULT".to_string(),
        "CHANGE".to_string(),
    ]];
    for r in &revisions {
        let (command, who) = match &r.written_by {
            Some(w) => (w.command.clone(), format!("{}@{}", w.user, w.host)),
            None => ("?".to_string(), "?".to_string()),
        };
        let result = match r.finished() {
            Some(true) => "finished",
            Some(false) => "unfinished",
            None => "-",
        };
        let change = match r.operation.as_ref().and_then(|o| o.rollback_to) {
            Some(serial) => format!("rollback to {serial}: {}", r.summary),
            None => r.summary.clone(),
        };
        rows.push([
            r.serial.to_string(),
            r.updated.clone().unwrap_or_else(|| "?".into()),
            command,
            who,
            result.to_string(),
            change,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = format!(
        "State of stack {} in {}: one revision per run, newest first\n",
        session.stack.name,
        store.location()
    );
    for row in rows {
        for (i, width) in widths.iter().enumerate() {
            text.push_str(&format!("{:<width$}  ", row[i]));
        }
        text.push_str(&row[5]);
        text.push('\n');
    }
    print(&text);
    Ok(())
}

pub(crate) async fn export<P: Program>(
    session: &Session<P>,
    args: ExportArgs,
) -> Result<(), Error> {
    let store = session.store().await?;
    let state = match args.revision {
        Some(serial) => store.revision(serial).await?,
        None => store.load().await?,
    };
    let mut text = serde_json::to_string_pretty(&state).expect("states serialize");
    text.push('\n');
    match &args.file {
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        Some(file) => {
            // As private as the state itself, and never through a link.
            echo_iac_engine::state::write_private_file(file, text.as_bytes())?;
            note(&format!(
                "Wrote the state of stack {} (serial {}, {} objects) from {} to {}",
                session.stack.name,
                state.serial,
                state.resources.len(),
                store.location(),
                file.display()
            ));
        }
    }
    Ok(())
}

pub(crate) async fn import<P: Program>(
    session: &Session<P>,
    args: ImportArgs,
) -> Result<(), Error> {
    let bytes = std::fs::read(&args.file).map_err(|e| StateError::io("read", &args.file, e))?;
    // The same checks as any stored state: schema, version, duplicates, and
    // that it is this stack's.
    let imported = echo_iac_engine::state::parse_document(
        &args.file.display().to_string(),
        &bytes,
        &session.stack.name,
    )?;
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        &format!("{} stack import", P::NAME),
        wait,
        async |locked| import_locked(session, locked, imported, args.force).await,
    )
    .await
}

async fn import_locked<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    imported: State,
    force: bool,
) -> Result<(), Error> {
    let store = locked.store();
    let current = match store.load().await {
        Ok(current) => current,
        // The restore a corrupt state's hint suggests.
        Err(StateError::Corrupt { .. }) if force => {
            let mut state = imported;
            locked.restore(&mut state).await?;
            print(&format!(
                "Restored the state of stack {} ({} objects) over the damaged one in {}, as serial {}.",
                session.stack.name,
                state.resources.len(),
                store.location(),
                state.serial
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if current.serial > imported.serial && !force {
        return Err(Error::refused(
            format!(
                "{} holds serial {} of stack {}, newer than the document's serial {}",
                store.location(),
                current.serial,
                session.stack.name,
                imported.serial
            ),
            "export the stored state first if it matters, then pass --force to replace it",
        ));
    }
    let mut state = imported;
    let from_serial = state.serial;
    // The write makes the next serial of whichever is newer, so that the
    // serial keeps growing in the target and matches the document's when
    // the target was older.
    state.serial = current.serial.max(from_serial.saturating_sub(1));
    locked.save(&mut state).await?;
    print(&format!(
        "Imported the state of stack {} ({} objects, serial {} of the document) into {} as serial {}.",
        session.stack.name,
        state.resources.len(),
        from_serial,
        store.location(),
        state.serial
    ));
    Ok(())
}
