package redis

import (
	"context"
	"encoding/json"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// relay delivers the messages of ps, decoded as T, to ch until ctx ends
// or the subscription ends. It ends when the subscription is lost, and
// when go-redis re-subscribes after a reconnect, since messages sent in
// the gap are gone: the owner re-reads what it may have missed and
// subscribes again. It ends too when ch is full: a subscriber that far
// behind is dropped rather than allowed to stall the others. It closes
// neither ch nor ps. what names the messages in logs ("match event").
func relay[T any](ctx context.Context, ps *goredis.PubSub, ch chan<- T, log *slog.Logger, what string) {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn(what+" subscription lost", "err", err)
			}
			return
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			return
		case *goredis.Message:
			var v T
			if err := json.Unmarshal([]byte(m.Payload), &v); err != nil {
				log.Warn("undecodable "+what, "err", err)
				continue
			}
			select {
			case ch <- v:
			default:
				log.Warn("dropping slow " + what + " subscriber")
				return
			}
		}
	}
}
