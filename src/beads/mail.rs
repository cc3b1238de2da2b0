//! Mail between agents and the overseer. A message is a bead of type `message`: the sender is
//! its creator, the recipient its assignee, the subject its title, the body its description,
//! and "read" is its closed status. So mail is in the audit trail and the JSONL export like
//! everything else, and never shows up as ready work.

use super::events::ev;
use super::model::{kind, status};
use super::rows::{check_id, must_load};
use super::{check_actor, Bead, Mail, NewBead, Store};
use crate::{Error, Result};

/// Checks a recipient address: `mayor`, `overseer`, `<rig>/witness`, `<rig>/refinery`,
/// `<rig>/<name>`, or a bare agent name.
pub fn check_address(addr: &str) -> Result<()> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    };
    let parts: Vec<&str> = addr.split('/').collect();
    if parts.len() <= 2 && parts.iter().all(|p| ok_part(p)) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "'{addr}' is not a mail address (expected mayor, overseer, <rig>/witness, \
             <rig>/refinery or <rig>/<agent>)"
        )))
    }
}

fn to_mail(b: Bead) -> Mail {
    Mail {
        read: b.status == status::CLOSED,
        id: b.id,
        from: b.created_by,
        to: b.assignee,
        subject: b.title,
        body: b.description,
        created_at: b.created_at,
    }
}

impl Store {
    /// Sends a message from `from` to `to`.
    pub fn mail_send(&self, from: &str, to: &str, subject: &str, body: &str) -> Result<Mail> {
        check_address(to)?;
        if subject.trim().is_empty() {
            return Err(Error::bad("the subject is empty"));
        }
        let nb = NewBead {
            title: subject.to_string(),
            description: body.to_string(),
            issue_type: Some(kind::MESSAGE.to_string()),
            assignee: to.to_string(),
            ..Default::default()
        };
        let b = self.create(&nb, from)?;
        Ok(to_mail(b))
    }

    /// The messages addressed to `to`, newest first; unread only unless `all`.
    pub fn inbox(&self, to: &str, all: bool) -> Result<Vec<Mail>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM beads WHERE issue_type = 'message' AND assignee = ?1
                   AND (?2 OR status <> 'closed')
                 ORDER BY created_ns DESC, id DESC",
                super::rows::BEAD_COLS
            ))?;
            let v = stmt
                .query_map(rusqlite::params![to, all], super::rows::bead_from_row)?
                .map(|r| r.map(to_mail))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    /// Reads a message: returns it and marks it read.
    pub fn mail_read(&self, id: &str, reader: &str) -> Result<Mail> {
        check_id(id)?;
        self.write(|tx| {
            let reader = check_actor(reader)?;
            let b = must_load(tx.conn, id)?;
            if b.issue_type != kind::MESSAGE {
                return Err(Error::bad(format!(
                    "{id} is a {}, not a message",
                    b.issue_type
                )));
            }
            if b.status != status::CLOSED {
                tx.conn.execute(
                    "UPDATE beads SET status = 'closed', closed_at = ?2, close_reason = 'read',
                        updated_at = ?2 WHERE id = ?1",
                    [id, &tx.now],
                )?;
                tx.simple_event(id, ev::READ, reader, None)?;
            }
            Ok(())
        })?;
        Ok(to_mail(self.get(id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::store;

    #[test]
    fn send_inbox_read() {
        let s = store();
        let m = s
            .mail_send("demo/nux", "overseer", "Stuck", "tests hang")
            .unwrap();
        s.mail_send("mayor", "demo/nux", "Hi", "").unwrap();
        let inbox = s.inbox("overseer", false).unwrap();
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].from, "demo/nux");
        assert_eq!(inbox[0].subject, "Stuck");
        assert!(!inbox[0].read);
        let read = s.mail_read(&m.id, "overseer").unwrap();
        assert!(read.read);
        assert_eq!(read.body, "tests hang");
        assert!(s.inbox("overseer", false).unwrap().is_empty());
        assert_eq!(s.inbox("overseer", true).unwrap().len(), 1);
        let kinds: Vec<_> = s
            .events_for(&m.id)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, vec!["created", "read"]);
        // Messages are not work and are not in a plain listing.
        assert!(s.ready(None).unwrap().is_empty());
        assert!(s.list(&Default::default()).unwrap().is_empty());
        assert!(s.mail_send("x", "a/b/c", "s", "").is_err());
        assert!(s.mail_send("x", "mayor", " ", "").is_err());
    }
}
