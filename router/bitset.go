package router

import "math/bits"

// bitset marks free agents by their configuration order, so round robin
// finds "the next free agent after the last one" by scanning words.
type bitset []uint64

func (b *bitset) set(i int) {
	for i/64 >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[i/64] |= 1 << (i % 64)
}

func (b bitset) clear(i int) {
	if i/64 < len(b) {
		b[i/64] &^= 1 << (i % 64)
	}
}

// next returns the smallest set index ≥ from, or -1.
func (b bitset) next(from int) int {
	if from < 0 {
		from = 0
	}
	w := from / 64
	if w >= len(b) {
		return -1
	}
	word := b[w] >> (from % 64)
	if word != 0 {
		return from + bits.TrailingZeros64(word)
	}
	for w++; w < len(b); w++ {
		if b[w] != 0 {
			return w*64 + bits.TrailingZeros64(b[w])
		}
	}
	return -1
}
