package matchd

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"time"
)

// Pool is the waiting tickets of one matching pool, indexed for a Policy so
// that finding a partner costs about the same with a million waiting
// tickets as with a thousand: tickets are bucketed by the values of the
// policy's must-equal fields, and within a bucket kept in rating bands,
// each a list in queue order. A partner is searched only in the buckets
// whose values can fit and the bands within the widest rating tolerance,
// and Partner checks at most PerBand tickets of each band; it says when
// that bound cut it short, and PartnerExhaustive then checks them all.
//
// Pool is a plain data structure: no locking, no I/O. It is the engine of
// the policy for the embedded backend.
type Pool struct {
	// PerBand bounds the tickets checked in one band in a search (the
	// oldest first); default candidatesPerBand.
	PerBand int

	policy  Policy
	byID    map[string]*poolEntry
	buckets map[bucketKey]*poolBucket
	wake    wakeHeap // when tickets' rules widen
	// free holds up to maxFree removed entries (linked by next) for Add to
	// reuse: with a million waiting tickets the GC's cost is marking them,
	// and an allocation per Add paid for that again and again.
	free  *poolEntry
	nfree int
}

// maxFree bounds the removed entries a Pool keeps for reuse.
const maxFree = 256

// bandWidth is the rating span of one band.
const bandWidth = 50

// candidatesPerBand bounds the tickets checked in one band: a band's
// oldest tickets that do not fit (topics, region, recent partners) are
// skipped at most this many times per search.
const candidatesPerBand = 8

type bucketKey struct {
	difficulty string
	duration   int
	language   string
}

// poolBucket holds the bands of one bucket. Bands base to
// base+len(dense)-1 are kept by value in dense, in rating order, so that a
// search reads the bands within its reach from one stretch of memory
// (with a million tickets, a map lookup and a pointer per band were two
// cache misses each); a band that would stretch dense beyond maxDense
// bands goes to far. n counts the bands holding tickets.
type poolBucket struct {
	key     bucketKey
	dense   []band
	base    int
	far     map[int]*band
	n       int
	tickets int // tickets in the bucket, for Count
}

// maxDense bounds a bucket's dense bands (51,200 rating points, 56 KiB).
const maxDense = 1024

// bandAt returns band i, or nil when it holds no tickets.
func (b *poolBucket) bandAt(i int) *band {
	if j := uint(i - b.base); j < uint(len(b.dense)) {
		if l := &b.dense[j]; l.head != nil {
			return l
		}
		return nil
	}
	return b.far[i]
}

// bandFor returns band i, empty when it holds no tickets, making room for
// it.
func (b *poolBucket) bandFor(i int) *band {
	if j := uint(i - b.base); j < uint(len(b.dense)) {
		return &b.dense[j]
	}
	if l := b.far[i]; l != nil {
		return l
	}
	if len(b.dense) == 0 {
		b.base, b.dense = i, make([]band, 1)
		return &b.dense[0]
	}
	lo, hi := min(i, b.base), max(i, b.base+len(b.dense)-1)
	// In floating point: with extreme ratings the difference of two band
	// numbers overflows an int.
	if float64(hi)-float64(lo) >= maxDense {
		if b.far == nil {
			b.far = make(map[int]*band)
		}
		l := &band{}
		b.far[i] = l
		return l
	}
	dense := make([]band, hi-lo+1)
	copy(dense[b.base-lo:], b.dense)
	b.base, b.dense = lo, dense
	return &b.dense[i-lo]
}

// band is a doubly linked list of tickets in queue (Seq) order. prioritized
// counts its tickets with a priority above 0: while there are none, the
// first ticket of a band that fits is the band's best, and a search stops
// there.
type band struct {
	head, tail  *poolEntry
	prioritized int
	// oldest is head's JoinedAt and newest tail's Seq, kept here so that a
	// search can skip a band out of reach without loading its head, and
	// Add can append without loading its tail: with a million tickets each
	// load is a cache miss.
	oldest time.Time
	newest uint64
}

type poolEntry struct {
	t          Ticket
	bucket     *poolBucket
	band       int
	prev, next *poolEntry
}

// NewPool returns an empty pool for policy.
func NewPool(policy Policy) *Pool {
	return &Pool{PerBand: candidatesPerBand, policy: policy, byID: make(map[string]*poolEntry), buckets: make(map[bucketKey]*poolBucket)}
}

// Len returns the number of waiting tickets.
func (p *Pool) Len() int { return len(p.byID) }

// Get returns the ticket of player, if any.
func (p *Pool) Get(player string) (Ticket, bool) {
	e, ok := p.byID[player]
	if !ok {
		return Ticket{}, false
	}
	return e.t, true
}

func (p *Pool) keyOf(t *Ticket) bucketKey {
	var k bucketKey
	for _, f := range p.policy.MustEqual {
		switch f {
		case "difficulty":
			k.difficulty = t.Prefs.Difficulty
		case "duration":
			k.duration = t.Prefs.Duration
		case "language":
			k.language = t.Prefs.Language
		}
	}
	return k
}

func bandOf(rating float64) int { return int(math.Floor(rating / bandWidth)) }

// bandDistance is the distance from rating to the nearest rating of band i.
func bandDistance(rating float64, i int) float64 {
	lo, hi := float64(i)*bandWidth, float64(i+1)*bandWidth
	switch {
	case rating < lo:
		return lo - rating
	case rating >= hi:
		return rating - hi
	default:
		return 0
	}
}

// Add inserts t (keeping an existing ticket of the player: Add reports
// false) and schedules its next widening after now.
func (p *Pool) Add(t Ticket, now time.Time) bool {
	if _, ok := p.byID[t.PlayerID]; ok {
		return false
	}
	k := p.keyOf(&t)
	b := p.buckets[k]
	if b == nil {
		b = &poolBucket{key: k}
		p.buckets[k] = b
	}
	e := p.free
	if e != nil {
		p.free, p.nfree = e.next, p.nfree-1
		*e = poolEntry{t: t, bucket: b, band: bandOf(t.Rating)}
	} else {
		e = &poolEntry{t: t, bucket: b, band: bandOf(t.Rating)}
	}
	l := b.bandFor(e.band)
	if l.head == nil {
		b.n++
	}
	// Insert in Seq order: at the tail unless an old ticket returns.
	at := l.tail
	if at != nil && l.newest > t.Seq {
		for at != nil && at.t.Seq > t.Seq {
			at = at.prev
		}
	}
	e.prev = at
	if at == nil {
		e.next, l.head = l.head, e
		l.oldest = t.JoinedAt
	} else {
		e.next, at.next = at.next, e
	}
	if e.next == nil {
		l.tail, l.newest = e, t.Seq
	} else {
		e.next.prev = e
	}
	if t.Priority > 0 {
		l.prioritized++
	}
	b.tickets++
	p.byID[t.PlayerID] = e
	if w := p.policy.Widens(&t, now); !w.IsZero() {
		// heap.Push would box the item: an allocation per Add.
		p.wake = append(p.wake, wakeItem{at: w, player: t.PlayerID, seq: t.Seq})
		heap.Fix(&p.wake, len(p.wake)-1)
	}
	return true
}

// Remove deletes player's ticket and reports whether there was one.
func (p *Pool) Remove(player string) bool {
	e, ok := p.byID[player]
	if !ok {
		return false
	}
	delete(p.byID, player)
	e.bucket.tickets--
	l := e.bucket.bandAt(e.band)
	if e.t.Priority > 0 {
		l.prioritized--
	}
	if e.prev == nil {
		l.head = e.next
		if e.next != nil {
			l.oldest = e.next.t.JoinedAt
		}
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		l.tail = e.prev
		if e.prev != nil {
			l.newest = e.prev.t.Seq
		}
	} else {
		e.next.prev = e.prev
	}
	if l.head == nil {
		b := e.bucket
		*l = band{}
		delete(b.far, e.band)
		if b.n--; b.n == 0 {
			delete(p.buckets, b.key)
		}
	}
	if p.nfree < maxFree {
		*e = poolEntry{next: p.free}
		p.free, p.nfree = e, p.nfree+1
	}
	return true
}

// Recent reports whether two players were matched with each other within
// the policy's no-rematch window.
type Recent func(a, b string) bool

// Partner returns the best waiting partner for t at now among the tickets
// it checks: of those that fit t, the one of highest priority, then the
// oldest. t itself may be in the pool. ok is false when nobody fits.
//
// It checks at most PerBand tickets of each band, so its cost does not
// grow with the pool. cut reports that nobody fit but some band within
// reach had tickets left unchecked: a partner may wait beyond the bound,
// and only PartnerExhaustive would find it.
func (p *Pool) Partner(t *Ticket, now time.Time, recent Recent) (partner Ticket, ok, cut bool) {
	budget := math.MaxInt
	return p.partner(t, now, recent, p.PerBand, &budget)
}

// PartnerExhaustive is Partner without the bound: it checks the tickets of
// every band within reach until it finds the best partner there is, or
// until it has made *budget checks (then cut is true: the search is not
// complete). It takes the checks it makes off *budget. Its cost is the
// number of tickets in reach: the embedded backend's sweeps use it for the
// tickets whose bounded search was cut.
func (p *Pool) PartnerExhaustive(t *Ticket, now time.Time, recent Recent, budget *int) (partner Ticket, ok, cut bool) {
	return p.partner(t, now, recent, math.MaxInt, budget)
}

func (p *Pool) partner(t *Ticket, now time.Time, recent Recent, perBand int, budget *int) (Ticket, bool, bool) {
	var best *Ticket
	cut := false
	tol := p.policy.Rating.Max
	lo, hi := math.MinInt, math.MaxInt
	if !math.IsInf(tol, 1) {
		lo, hi = bandOf(t.Rating-tol), bandOf(t.Rating+tol)
	}
	want := p.keyOf(t)
	for _, b := range p.buckets {
		if !keysFit(want, b.key) {
			continue
		}
		visit := func(i int, l *band) {
			// The band's oldest ticket has its widest tolerance (the
			// longer wait counts): if even that cannot reach the band's
			// nearest rating, no ticket of the band can fit.
			if reach := p.policy.Rating.At(max(t.Waited(now), now.Sub(l.oldest))); bandDistance(t.Rating, i) > reach {
				return
			}
			checked := 0
			e := l.head
			for ; e != nil && checked < perBand && *budget > 0; e = e.next {
				if e.t.PlayerID == t.PlayerID {
					continue
				}
				checked++
				*budget--
				c := &e.t
				if !p.policy.Fits(t, c, now, recent != nil && p.policy.NoRematch > 0 && recent(t.PlayerID, c.PlayerID)) {
					continue
				}
				if best == nil || c.Priority > best.Priority || c.Priority == best.Priority && c.Seq < best.Seq {
					best = c
				}
				if l.prioritized == 0 {
					return // the rest of the band is younger and of the same priority
				}
			}
			for ; e != nil && e.t.PlayerID == t.PlayerID; e = e.next {
			}
			if e != nil {
				cut = true // tickets of this band were left unchecked
			}
		}
		if lo == math.MinInt || hi-lo+1 > b.n {
			for j := range b.dense {
				if l := &b.dense[j]; l.head != nil {
					visit(b.base+j, l)
				}
			}
			for i, l := range b.far {
				visit(i, l)
			}
		} else {
			for i := lo; i <= hi; i++ {
				if l := b.bandAt(i); l != nil {
					visit(i, l)
				}
			}
		}
	}
	if best == nil {
		return Ticket{}, false, cut
	}
	return *best, true, false
}

// keysFit reports whether tickets of two buckets can fit: each must-equal
// field is equal or unstated on one side.
func keysFit(a, b bucketKey) bool {
	return (a.difficulty == "" || b.difficulty == "" || a.difficulty == b.difficulty) &&
		(a.duration == 0 || b.duration == 0 || a.duration == b.duration) &&
		(a.language == "" || b.language == "" || a.language == b.language)
}

// Due returns the players whose rules have widened by now (each once per
// widening), oldest ticket first, and schedules their next widening. A
// sweep searches a partner for each of them.
func (p *Pool) Due(now time.Time) []Ticket {
	var due []Ticket
	for len(p.wake) > 0 && !p.wake[0].at.After(now) {
		// heap.Pop would box the item: an allocation per wake-up.
		w, n := p.wake[0], len(p.wake)-1
		p.wake[0], p.wake[n] = p.wake[n], wakeItem{}
		p.wake = p.wake[:n]
		if n > 0 {
			heap.Fix(&p.wake, 0)
		}
		e, ok := p.byID[w.player]
		if !ok || e.t.Seq != w.seq {
			continue // left or re-joined since
		}
		due = append(due, e.t)
		if next := p.policy.Widens(&e.t, now); !next.IsZero() {
			heap.Push(&p.wake, wakeItem{at: next, player: w.player, seq: w.seq})
		}
	}
	return due
}

type wakeItem struct {
	at     time.Time
	player string
	seq    uint64
}

type wakeHeap []wakeItem

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wakeItem)) }
func (h *wakeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// SetOwner sets the owner of player's ticket and reports whether the
// player has one.
func (p *Pool) SetOwner(player, owner string) bool {
	e, ok := p.byID[player]
	if ok {
		e.t.Owner = owner
	}
	return ok
}

// Tickets returns every waiting ticket, oldest first. It copies and sorts
// the whole pool: for operators and retries, not for the matching path.
func (p *Pool) Tickets() []Ticket {
	all := make([]Ticket, 0, len(p.byID))
	for _, e := range p.byID {
		all = append(all, e.t)
	}
	slices.SortFunc(all, func(a, b Ticket) int { return cmp.Compare(a.Seq, b.Seq) })
	return all
}

// Count returns the number of waiting tickets in the buckets that a player
// with preferences prefs could be matched from: those whose must-equal
// fields fit prefs. It costs one step per bucket.
func (p *Pool) Count(prefs Preferences) int {
	want := p.keyOf(&Ticket{Prefs: prefs})
	n := 0
	for _, b := range p.buckets {
		if keysFit(want, b.key) {
			n += b.tickets
		}
	}
	return n
}
