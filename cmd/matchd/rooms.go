package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/matchd/matchd"
)

// roomConfig holds the room lifecycle's settings.
type roomConfig struct {
	readyTimeout time.Duration // 0: rooms start active at once
	cooldown     time.Duration // a no-show may not join for this long
	boost        int           // priority added to a requeued player
}

func (rc *roomConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&rc.readyTimeout, "ready-timeout", 30*time.Second, "how long both players have to say ready after a match; a player whose partner did not is requeued at their place; 0 = rooms start active at once")
	fs.DurationVar(&rc.cooldown, "no-show-cooldown", 2*time.Minute, "how long a player who was not ready in time may not join again; 0 = no cooldown")
	fs.IntVar(&rc.boost, "requeue-boost", 10, "priority added to a player requeued because their partner did not show up")
}

func (rc roomConfig) check(roomTTL time.Duration) error {
	switch {
	case rc.readyTimeout < 0:
		return fmt.Errorf("-ready-timeout: %v is negative", rc.readyTimeout)
	case rc.readyTimeout >= roomTTL:
		return fmt.Errorf("-ready-timeout: %v is not shorter than -room-ttl %v", rc.readyTimeout, roomTTL)
	case rc.cooldown < 0:
		return fmt.Errorf("-no-show-cooldown: %v is negative", rc.cooldown)
	case rc.boost < 0 || rc.boost > 1000:
		return fmt.Errorf("-requeue-boost: %d is not from 0 to 1000", rc.boost)
	}
	return nil
}

// lifecycle returns the room lifecycle on store, settling with mm.
func (rc roomConfig) lifecycle(store matchd.SessionStore, mm matchd.Settler, clock matchd.Clock, roomTTL time.Duration, o matchd.SessionObserver) *matchd.Lifecycle {
	return matchd.NewLifecycle(store, mm, matchd.LifecycleConfig{
		SessionConfig: matchd.SessionConfig{ReadyTimeout: rc.readyTimeout, RoomTTL: roomTTL},
		Cooldown:      rc.cooldown,
		Boost:         rc.boost,
		Clock:         clock,
		Observer:      o,
	})
}
