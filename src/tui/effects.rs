//! The dashboard's effects performed through the desk, off the UI thread; each comes back
//! as an [`Outcome`] in the dashboard's words.

use crate::app::{Effect, Outcome};
use crate::desk::{Desk, DeskError};
use crate::store::Origin;

/// A refusal the desk gives, in the dashboard's words.
fn outcome_of<T>(r: crate::desk::Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(DeskError::Trade(t)) => Outcome::Refused(crate::form::in_form_words(&t)),
        Err(e) if e.is_refusal() => Outcome::Refused(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Perform an effect that is not the engine's (everything but `CheckNow`) through the desk
/// and say how it went. Store work runs on blocking threads; a manual trade and a close
/// first ask the source for a fresh price, exactly as `trade` and `close` do.
pub async fn execute(desk: &Desk, effect: Effect) -> Outcome {
    let blocking = |f: Box<dyn FnOnce(&Desk) -> Outcome + Send>| {
        let desk = desk.clone();
        async move {
            tokio::task::spawn_blocking(move || f(&desk))
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("the store task failed: {e}")))
        }
    };
    match effect {
        Effect::Trade { order, allow, .. } => {
            match desk.trade(&order, Origin::Manual, false, &allow).await {
                // The desk recorded the refusal as an event: the events pane shows it.
                Err(e) if e.is_refusal() => Outcome::Recorded,
                other => outcome_of(other),
            }
        }
        Effect::ClosePosition {
            position_id,
            symbol,
            ..
        } => outcome_of(
            desk.close(
                &symbol,
                Some(position_id),
                "closed by trader on the dashboard",
            )
            .await,
        ),
        Effect::Confirm { log_id, .. } => outcome_of(desk.confirm(&log_id).await),
        Effect::Cancel { log_id, .. } => {
            blocking(Box::new(move |desk| {
                outcome_of(desk.cancel(&log_id, "cancelled on the dashboard"))
            }))
            .await
        }
        Effect::SetEnabled(on) => {
            blocking(Box::new(move |desk| outcome_of(desk.set_enabled(on)))).await
        }
        Effect::Kill => blocking(Box::new(|desk| outcome_of(desk.kill()))).await,
        Effect::Flatten => match desk.flatten().await {
            Ok((_, closed)) => {
                let failed: Vec<String> = closed.into_iter().filter_map(|c| c.err()).collect();
                if failed.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Refused(failed.join("; "))
                }
            }
            Err(e) => outcome_of::<()>(Err(e)),
        },
        Effect::ResetHalt => blocking(Box::new(|desk| outcome_of(desk.reset_halt()))).await,
        Effect::Resize { log_id, size, .. } => {
            blocking(Box::new(move |desk| outcome_of(desk.resize(&log_id, size)))).await
        }
        Effect::LoadHistory { query } => {
            blocking(Box::new(move |desk| match desk.history(&query) {
                Ok(h) => Outcome::History(Box::new(h)),
                Err(e) => Outcome::Failed(e.to_string()),
            }))
            .await
        }
        Effect::LoadReport => {
            blocking(Box::new(|desk| match desk.report(None) {
                Ok(r) => Outcome::Report(Box::new(r)),
                Err(e) => Outcome::Failed(e.to_string()),
            }))
            .await
        }
        Effect::CheckNow | Effect::StartEngine | Effect::Quit => Outcome::Ok,
    }
}
