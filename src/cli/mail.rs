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
    },
    /// The actor's inbox (unread only unless --all), newest first.
    Inbox {
        #[arg(long)]
        all: bool,
    },
    /// Read a message (marks it read).
    Read { id: String },
}

pub fn run(ctx: &Ctx, cmd: MailCmd) -> Result<()> {
    let s = &ctx.store;
    match cmd {
        MailCmd::Send { to, subject, body } => {
            let m = s.mail_send(&ctx.actor, &to, &subject, body.as_deref().unwrap_or(""))?;
            ctx.out.one(&m, || {
                line(&format!("Sent {} to {}: {}", m.id, m.to, m.subject))
            })
        }
        MailCmd::Inbox { all } => {
            let inbox = s.inbox(&ctx.actor, all)?;
            let empty = format!(
                "No {}mail for {}.",
                if all { "" } else { "unread " },
                ctx.actor
            );
            ctx.out.list(&inbox, inbox.is_empty(), &empty, || {
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
                table(&rows)
            })
        }
        MailCmd::Read { id } => {
            let m = s.mail_read(&id, &ctx.actor)?;
            if ctx.out.json {
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
