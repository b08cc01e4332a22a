package matchd

// Compatible reports whether two tickets may be paired. The queue calls it
// with a older than b.
type Compatible func(a, b *Ticket) bool

// AnyPair is the Compatible rule of plain FIFO matching: everyone fits.
func AnyPair(a, b *Ticket) bool { return true }

// Queue is the waiting line of one pool: tickets in Seq order, indexed by
// player. It is a plain data structure with no locking and no I/O; the
// embedded backend guards it with its own mutex.
//
// Tickets are kept in a doubly linked list so that joins, leaves and the
// removal of a matched pair are O(1), and pairing scans from the oldest
// ticket, so under FIFO rules the first pair is found in O(1).
type Queue struct {
	head, tail *queueNode
	byPlayer   map[string]*queueNode
}

type queueNode struct {
	t          Ticket
	prev, next *queueNode
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{byPlayer: make(map[string]*queueNode)} }

// Len returns the number of waiting tickets.
func (q *Queue) Len() int { return len(q.byPlayer) }

// Get returns the ticket of player, if any.
func (q *Queue) Get(player string) (Ticket, bool) {
	n, ok := q.byPlayer[player]
	if !ok {
		return Ticket{}, false
	}
	return n.t, true
}

// Add inserts t at the place its Seq gives it and reports whether it was
// added; a player who already holds a ticket keeps it and Add returns
// false. Backends hand out increasing Seqs, so the insert is at the tail in
// the common case; the backwards walk keeps order correct for a ticket that
// returns with an old Seq.
func (q *Queue) Add(t Ticket) bool {
	if _, ok := q.byPlayer[t.PlayerID]; ok {
		return false
	}
	n := &queueNode{t: t}
	q.byPlayer[t.PlayerID] = n
	at := q.tail
	for at != nil && at.t.Seq > t.Seq {
		at = at.prev
	}
	// Insert n after at (at == nil: at the head).
	n.prev = at
	if at == nil {
		n.next, q.head = q.head, n
	} else {
		n.next, at.next = at.next, n
	}
	if n.next == nil {
		q.tail = n
	} else {
		n.next.prev = n
	}
	return true
}

// Update applies f to player's ticket in place and reports whether there
// was one. f must not change PlayerID or Seq.
func (q *Queue) Update(player string, f func(*Ticket)) bool {
	n, ok := q.byPlayer[player]
	if ok {
		f(&n.t)
	}
	return ok
}

// Remove deletes player's ticket and reports whether there was one.
func (q *Queue) Remove(player string) bool {
	n, ok := q.byPlayer[player]
	if !ok {
		return false
	}
	delete(q.byPlayer, player)
	if n.prev == nil {
		q.head = n.next
	} else {
		n.prev.next = n.next
	}
	if n.next == nil {
		q.tail = n.prev
	} else {
		n.next.prev = n.prev
	}
	return true
}

// Pair returns the two oldest tickets that fit each other: the oldest
// ticket that has any partner, with its oldest partner. It does not remove
// them; the caller removes them once the match is committed, so a failed
// match leaves both exactly where they were.
func (q *Queue) Pair(fits Compatible) (a, b Ticket, ok bool) {
	for x := q.head; x != nil; x = x.next {
		for y := x.next; y != nil; y = y.next {
			if fits(&x.t, &y.t) {
				return x.t, y.t, true
			}
		}
	}
	return Ticket{}, Ticket{}, false
}

// All returns the waiting tickets, oldest first.
func (q *Queue) All() []Ticket {
	out := make([]Ticket, 0, q.Len())
	for n := q.head; n != nil; n = n.next {
		out = append(out, n.t)
	}
	return out
}
