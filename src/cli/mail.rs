//! `mail send|inbox|read`, from the actor's identity (`--as`, `$GT_AGENT`, ...).

use super::output::{json, line, short_time, table};
use super::Ctx;
use crate::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MailCmd {
    /// Send a message: TO is mayor, overseer, <rig>/witness, <rig>/refinery or <rig>/<agent>.
    Send {
        to: String,
        subject: String,
        body: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The actor's inbox (unread only unless --all), newest first.
    Inbox {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Read a message (marks it read).
    Read {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: MailCmd) -> Result<()> {
    let s = &ctx.store;
    match cmd {
        MailCmd::Send {
            to,
            subject,
            body,
            json: as_json,
        } => {
            let m = s.mail_send(&ctx.actor, &to, &subject, body.as_deref().unwrap_or(""))?;
            if as_json {
                json(&m)
            } else {
                line(&format!("Sent {} to {}: {}", m.id, m.to, m.subject))
            }
        }
        MailCmd::Inbox { all, json: as_json } => {
            let inbox = s.inbox(&ctx.actor, all)?;
            if as_json {
                return json(&inbox);
            }
            if inbox.is_empty() {
                return line(&format!(
                    "No {}mail for {}.",
                    if all { "" } else { "unread " },
                    ctx.actor
                ));
            }
            let mut rows = vec![vec![
                "ID".to_string(),
                "".into(),
                "FROM".into(),
                "WHEN".into(),
                "SUBJECT".into(),
            ]];
            for m in &inbox {
                rows.push(vec![
                    m.id.clone(),
                    if m.read { " ".into() } else { "●".into() },
                    m.from.clone(),
                    short_time(&m.created_at),
                    m.subject.clone(),
                ]);
            }
            for l in table(&rows) {
                line(&l)?;
            }
            Ok(())
        }
        MailCmd::Read { id, json: as_json } => {
            let m = s.mail_read(&id, &ctx.actor)?;
            if as_json {
                return json(&m);
            }
            line(&format!("From:    {}", m.from))?;
            line(&format!("To:      {}", m.to))?;
            line(&format!("Date:    {}", short_time(&m.created_at)))?;
            line(&format!("Subject: {}", m.subject))?;
            if !m.body.is_empty() {
                line("")?;
                line(&m.body)?;
            }
            Ok(())
        }
    }
}
