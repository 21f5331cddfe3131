//! Rolling building blocks for the analyzer: every update is O(1) (amortized for the extremes).

use std::collections::VecDeque;

/// The last `cap` values in a ring buffer, with a running sum.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    buf: Vec<f64>,
    head: usize,
    len: usize,
    sum: f64,
    pushes: u64,
}

/// Re-add the window from scratch this often, so the running sum cannot drift.
const RESYNC_EVERY: u64 = 4096;

impl Window {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            buf: vec![0.0; cap],
            head: 0,
            len: 0,
            sum: 0.0,
            pushes: 0,
        }
    }

    pub(crate) fn cap(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Adds `v`; the value that fell out of the window, if it was full.
    pub(crate) fn push(&mut self, v: f64) -> Option<f64> {
        let cap = self.buf.len();
        let evicted = if self.len == cap {
            let old = self.buf[self.head];
            self.sum -= old;
            Some(old)
        } else {
            self.len += 1;
            None
        };
        self.buf[self.head] = v;
        self.sum += v;
        self.head = (self.head + 1) % cap;
        self.pushes += 1;
        if self.pushes.is_multiple_of(RESYNC_EVERY) {
            self.sum = self.iter_sum();
        }
        evicted
    }

    fn iter_sum(&self) -> f64 {
        (0..self.len).map(|k| self.back(k)).sum()
    }

    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        (self.len > 0).then(|| self.sum / self.len as f64)
    }

    /// The value `k` steps back from the newest (0 = newest). `k` must be < len.
    pub(crate) fn back(&self, k: usize) -> f64 {
        let cap = self.buf.len();
        self.buf[(self.head + cap - 1 - (k % cap)) % cap]
    }

    /// The oldest value held.
    pub(crate) fn oldest(&self) -> Option<f64> {
        (self.len > 0).then(|| self.back(self.len - 1))
    }
}

/// Rolling maximum (or minimum) of the last `n` values: a monotonic deque, amortized O(1).
#[derive(Debug, Clone)]
pub(crate) struct RollingExtreme {
    n: u64,
    is_max: bool,
    idx: u64,
    dq: VecDeque<(u64, f64)>,
}

impl RollingExtreme {
    pub(crate) fn max(n: usize) -> Self {
        Self::new(n, true)
    }

    pub(crate) fn min(n: usize) -> Self {
        Self::new(n, false)
    }

    fn new(n: usize, is_max: bool) -> Self {
        let n = n.max(1);
        Self {
            n: n as u64,
            is_max,
            idx: 0,
            dq: VecDeque::with_capacity(n + 1),
        }
    }

    pub(crate) fn push(&mut self, v: f64) {
        let is_max = self.is_max;
        while let Some(&(_, b)) = self.dq.back() {
            let dominated = if is_max { b <= v } else { b >= v };
            if dominated {
                self.dq.pop_back();
            } else {
                break;
            }
        }
        self.dq.push_back((self.idx, v));
        self.idx += 1;
        while let Some(&(i, _)) = self.dq.front() {
            if i + self.n < self.idx {
                self.dq.pop_front();
            } else {
                break;
            }
        }
    }

    pub(crate) fn value(&self) -> Option<f64> {
        self.dq.front().map(|&(_, v)| v)
    }
}

/// Exponential moving average seeded with the first value.
#[derive(Debug, Clone)]
pub(crate) struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    pub(crate) fn new(period: usize) -> Self {
        Self {
            alpha: 2.0 / (period.max(1) as f64 + 1.0),
            value: None,
        }
    }

    pub(crate) fn push(&mut self, v: f64) {
        self.value = Some(match self.value {
            None => v,
            Some(prev) => prev + self.alpha * (v - prev),
        });
    }

    pub(crate) fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Wilder smoothing: the simple mean of the first `n` values, then `(prev·(n−1) + v)/n`.
#[derive(Debug, Clone)]
pub(crate) struct Wilder {
    n: usize,
    count: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Wilder {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n: n.max(1),
            count: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    pub(crate) fn push(&mut self, v: f64) {
        let n = self.n as f64;
        match self.value {
            Some(prev) => self.value = Some((prev * (n - 1.0) + v) / n),
            None => {
                self.count += 1;
                self.seed_sum += v;
                if self.count >= self.n {
                    self.value = Some(self.seed_sum / n);
                }
            }
        }
    }

    pub(crate) fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Wilder's RSI.
#[derive(Debug, Clone)]
pub(crate) struct Rsi {
    gain: Wilder,
    loss: Wilder,
    prev: Option<f64>,
}

impl Rsi {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            gain: Wilder::new(n),
            loss: Wilder::new(n),
            prev: None,
        }
    }

    pub(crate) fn push(&mut self, close: f64) {
        if let Some(p) = self.prev {
            let d = close - p;
            self.gain.push(d.max(0.0));
            self.loss.push((-d).max(0.0));
        }
        self.prev = Some(close);
    }

    pub(crate) fn value(&self) -> Option<f64> {
        let g = self.gain.value()?;
        let l = self.loss.value()?;
        if g + l <= 0.0 {
            return Some(50.0);
        }
        Some(100.0 * g / (g + l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_last_values_and_sum() {
        let mut w = Window::new(3);
        assert_eq!(w.push(1.0), None);
        assert_eq!(w.push(2.0), None);
        assert_eq!(w.push(3.0), None);
        assert_eq!(w.push(4.0), Some(1.0));
        assert_eq!(w.sum(), 9.0);
        assert_eq!(w.back(0), 4.0);
        assert_eq!(w.oldest(), Some(2.0));
        assert_eq!(w.mean(), Some(3.0));
        assert!(w.is_full());
        assert_eq!(w.cap(), 3);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn rolling_extremes_match_brute_force() {
        let xs: Vec<f64> = (0..500)
            .map(|i| ((i * 7919) % 101) as f64 - (i % 13) as f64)
            .collect();
        let mut mx = RollingExtreme::max(24);
        let mut mn = RollingExtreme::min(24);
        for (i, &x) in xs.iter().enumerate() {
            mx.push(x);
            mn.push(x);
            let lo = i.saturating_sub(23);
            let bmax = xs[lo..=i].iter().cloned().fold(f64::MIN, f64::max);
            let bmin = xs[lo..=i].iter().cloned().fold(f64::MAX, f64::min);
            assert_eq!(mx.value(), Some(bmax));
            assert_eq!(mn.value(), Some(bmin));
        }
    }

    #[test]
    fn rsi_is_100_for_only_gains_and_0_for_only_losses() {
        let mut up = Rsi::new(14);
        let mut down = Rsi::new(14);
        for i in 0..30 {
            up.push(100.0 + i as f64);
            down.push(100.0 - i as f64);
        }
        assert_eq!(up.value(), Some(100.0));
        assert_eq!(down.value(), Some(0.0));
    }
}
