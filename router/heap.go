package router

// indexHeap is a binary heap that tells each element its position, so an
// element can be removed or re-ordered in O(log n) when an agent's or
// task's state changes.
type indexHeap[T any] struct {
	items  []T
	less   func(a, b T) bool
	setPos func(x T, i int) // i is -1 once x has left the heap
}

func (h *indexHeap[T]) len() int { return len(h.items) }

func (h *indexHeap[T]) push(x T) {
	h.setPos(x, len(h.items))
	h.items = append(h.items, x)
	h.up(len(h.items) - 1)
}

func (h *indexHeap[T]) remove(i int) {
	last := len(h.items) - 1
	x := h.items[i]
	if i != last {
		h.swap(i, last)
	}
	var zero T
	h.items[last] = zero
	h.items = h.items[:last]
	h.setPos(x, -1)
	if i != last {
		h.fix(i)
	}
}

// fix restores the order after the element at i changed its key.
func (h *indexHeap[T]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *indexHeap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.setPos(h.items[i], i)
	h.setPos(h.items[j], j)
}

func (h *indexHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *indexHeap[T]) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// first returns the best element for which ok holds, visiting elements in
// heap order. Exclusions are rare, so it nearly always stops at the root.
func (h *indexHeap[T]) first(ok func(T) bool) (T, bool) {
	var zero T
	if len(h.items) == 0 {
		return zero, false
	}
	if ok(h.items[0]) {
		return h.items[0], true
	}
	frontier := []int{1, 2}
	for len(frontier) > 0 {
		best := -1
		for k, i := range frontier {
			if i < len(h.items) && (best < 0 || h.less(h.items[i], h.items[frontier[best]])) {
				best = k
			}
		}
		if best < 0 {
			return zero, false
		}
		i := frontier[best]
		frontier = append(frontier[:best], frontier[best+1:]...)
		if ok(h.items[i]) {
			return h.items[i], true
		}
		frontier = append(frontier, 2*i+1, 2*i+2)
	}
	return zero, false
}
