//! Loss halts: after every write that moves prices, the equity is measured against the day's
//! start and the peak (`[risk]`); crossing a limit halts new entries in the same transaction,
//! cancels what is pending, and stays until the trader resets it.

use super::{Desk, DeskError, Result, views};
use crate::domain::halt::{self, Halt, LossLimits};
use crate::domain::money::fmt_money;
use crate::store::Tx;

impl Desk {
    /// The configured loss limits.
    pub fn loss_limits(&self) -> LossLimits {
        LossLimits {
            daily_loss_percent: self.config.risk_limits.daily_loss_limit_percent,
            max_drawdown_percent: self.config.risk_limits.max_drawdown_percent,
        }
    }

    /// Clear a loss halt (`enable --reset`, `R` on the dashboard): the peak and the day's start
    /// move to today's equity, and auto-trading is enabled. Returns the halt cleared, if any.
    pub fn reset_halt(&self) -> Result<Option<Halt>> {
        let size = self.config.account.size;
        Ok(self.store.write(|tx| {
            let st = tx.state()?;
            let equity = equity_in(tx, size)?;
            tx.set_marks(&halt::rebased(equity, tx.now()))?;
            tx.set_halt(None)?;
            tx.set_switches(true, Some(false))?;
            match &st.halt {
                Some(h) => tx.add_event(
                    "info",
                    &format!(
                        "loss halt reset by the trader at equity {}: the peak and the day's start are now {0}; auto-trading enabled (was: {})",
                        fmt_money(equity),
                        h.reason
                    ),
                )?,
                None => tx.add_event("info", "auto-trading enabled")?,
            }
            Ok::<_, crate::store::StoreError>(st.halt)
        })?)
    }

    /// Refuse to enable while a loss halt is in force: only a reset clears it.
    pub(super) fn refuse_if_halted(tx: &Tx<'_>) -> Result<()> {
        match tx.state()?.halt {
            Some(h) => Err(DeskError::Refused(format!(
                "HALTED: {}; `enable --reset` (or R on the dashboard) clears the halt and starts the limits again from today's equity",
                h.reason
            ))),
            None => Ok(()),
        }
    }
}

/// The ledger's equity as the store stands: the account size, realized P&L, and the open
/// positions marked at their latest prices.
fn equity_in(tx: &Tx<'_>, account_size: f64) -> crate::store::Result<f64> {
    Ok(views::equity_of(
        account_size,
        tx.realized_pnl()?,
        &tx.open_positions()?,
        &tx.prices()?,
    )
    .equity)
}

/// Measure the equity against the loss limits after prices moved, in the caller's
/// transaction: keep the marks, and halt when one is crossed (pending decisions cancelled,
/// open positions keep their exits). Nothing is read when no limit is set.
pub(super) fn watch_losses(tx: &Tx<'_>, desk: &Desk) -> crate::store::Result<()> {
    let limits = desk.loss_limits();
    if !limits.any() || desk.viewer {
        return Ok(());
    }
    let st = tx.state()?;
    let equity = equity_in(tx, desk.config.account.size)?;
    let marks = halt::roll(st.marks, equity, tx.now());
    if marks != st.marks {
        tx.set_marks(&marks)?;
    }
    if st.halt.is_some() {
        return Ok(());
    }
    if let Some(reason) = halt::tripped(&limits, &marks, equity) {
        tx.set_halt(Some(&Halt {
            at_ms: tx.now(),
            reason: reason.clone(),
        }))?;
        let n = tx.cancel_all_pending(&format!("loss halt: {reason}"))?;
        tx.add_event(
            "halt",
            &format!(
                "HALTED: {reason}; new entries stop, {n} pending decision(s) cancelled, open positions keep their exits; `enable --reset` clears it"
            ),
        )?;
    }
    Ok(())
}
