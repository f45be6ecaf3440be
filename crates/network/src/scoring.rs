//! Application-level peer scores and bans, kept by the service.
//!
//! Every peer starts at 0. [`Misbehaviour`] subtracts points; scores recover towards 0 by
//! [`PeerScores::decay`] (the service calls it once a second), so only sustained
//! misbehaviour leads to a ban. A peer at or below the ban threshold is banned for the ban
//! period: the service disconnects it and refuses its connections until the ban expires,
//! then the peer starts again from 0. Pure logic: time is passed in.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// Default score at or below which a peer is banned.
pub const DEFAULT_BAN_THRESHOLD: i32 = -100;
/// Default ban period.
pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(60 * 60);

/// Something a peer did wrong; each kind costs [`Misbehaviour::penalty`] points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// Sent a block that failed validation or re-execution.
    InvalidBlock,
    /// Sent a transaction the pool rejected as invalid (not merely underpriced or known).
    InvalidTransaction,
    /// Sent an invalid consensus unit, vote or signature.
    InvalidConsensusMessage,
    /// Sent bytes that do not decode.
    Undecodable,
    /// Sent a message above the size limit of its topic.
    Oversized,
    /// Answered a sync request with the wrong kind or number of items.
    InvalidResponse,
    /// Anything else worth a small penalty (spam, useless requests).
    Nuisance,
}

impl Misbehaviour {
    /// Points subtracted from the peer's score.
    pub const fn penalty(self) -> i32 {
        match self {
            Self::InvalidBlock | Self::InvalidConsensusMessage => 50,
            Self::Undecodable | Self::Oversized | Self::InvalidResponse => 25,
            Self::InvalidTransaction => 10,
            Self::Nuisance => 5,
        }
    }
}

/// What a penalty led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The score dropped but stays above the threshold.
    Penalized { score: i32 },
    /// The score reached the threshold: the peer is banned from now on.
    Banned { score: i32 },
    /// The peer was already banned; nothing changed.
    AlreadyBanned,
}

/// Scores and bans of all peers.
#[derive(Debug)]
pub struct PeerScores {
    scores: HashMap<PeerId, i32>,
    banned_at: HashMap<PeerId, Instant>,
    ban_threshold: i32,
    ban_duration: Duration,
}

impl PeerScores {
    pub fn new(ban_threshold: i32, ban_duration: Duration) -> Self {
        Self {
            scores: HashMap::new(),
            banned_at: HashMap::new(),
            ban_threshold,
            ban_duration,
        }
    }

    /// Current score (0 for unknown peers).
    pub fn score(&self, peer: &PeerId) -> i32 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned_at
            .get(peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ban_duration)
    }

    /// Peers currently banned.
    pub fn banned(&self, now: Instant) -> Vec<PeerId> {
        self.banned_at
            .keys()
            .filter(|p| self.is_banned(p, now))
            .copied()
            .collect()
    }

    pub fn penalize(&mut self, peer: PeerId, misbehaviour: Misbehaviour, now: Instant) -> Verdict {
        if self.is_banned(&peer, now) {
            return Verdict::AlreadyBanned;
        }
        let score = self.scores.entry(peer).or_insert(0);
        *score = score.saturating_sub(misbehaviour.penalty());
        let score = *score;
        if score <= self.ban_threshold {
            self.banned_at.insert(peer, now);
            Verdict::Banned { score }
        } else {
            Verdict::Penalized { score }
        }
    }

    /// Moves every negative score of a peer that is not banned `points` towards 0.
    pub fn decay(&mut self, points: i32) {
        let banned = &self.banned_at;
        self.scores.retain(|peer, score| {
            if !banned.contains_key(peer) {
                *score = score.saturating_add(points).min(0);
            }
            *score != 0
        });
    }

    /// Ends the bans whose period is over and returns those peers; their scores restart at 0.
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let duration = self.ban_duration;
        let expired: Vec<PeerId> = self
            .banned_at
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= duration)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &expired {
            self.banned_at.remove(peer);
            self.scores.remove(peer);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_misbehaviour_bans_then_ban_expires() {
        let mut scores = PeerScores::new(-100, Duration::from_secs(10));
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(
            scores.penalize(peer, Misbehaviour::InvalidBlock, t0),
            Verdict::Penalized { score: -50 }
        );
        assert!(!scores.is_banned(&peer, t0));
        assert_eq!(
            scores.penalize(peer, Misbehaviour::InvalidBlock, t0),
            Verdict::Banned { score: -100 }
        );
        assert!(scores.is_banned(&peer, t0));
        assert_eq!(
            scores.penalize(peer, Misbehaviour::Oversized, t0),
            Verdict::AlreadyBanned
        );
        assert_eq!(scores.banned(t0), vec![peer]);

        let t1 = t0 + Duration::from_secs(9);
        assert!(scores.expire_bans(t1).is_empty());
        assert!(scores.is_banned(&peer, t1));
        let t2 = t0 + Duration::from_secs(10);
        assert!(!scores.is_banned(&peer, t2));
        assert_eq!(scores.expire_bans(t2), vec![peer]);
        assert_eq!(scores.score(&peer), 0);
    }

    #[test]
    fn decay_forgives_occasional_mistakes_but_not_during_a_ban() {
        let mut scores = PeerScores::new(-100, Duration::from_secs(10));
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        scores.penalize(a, Misbehaviour::InvalidTransaction, now);
        for _ in 0..3 {
            scores.penalize(b, Misbehaviour::Undecodable, now);
        }
        scores.penalize(b, Misbehaviour::Undecodable, now);
        scores.decay(4);
        assert_eq!(scores.score(&a), -6);
        assert_eq!(scores.score(&b), -100, "banned peers do not recover");
        scores.decay(10);
        assert_eq!(scores.score(&a), 0);
    }
}
