package history

import (
	"slices"
	"time"
)

// stamped is a reading and when it was taken.
type stamped[T any] struct {
	at time.Time
	v  T
}

// window holds readings oldest first. It is a slice rather than a ring
// buffer: trimming shifts what is left to the front, which for the ~120
// readings of an hour costs nothing, reuses the array, and keeps the
// readers' oldest-first copy a plain loop.
type window[T any] struct {
	items []stamped[T]
}

// add appends a reading taken at at.
func (w *window[T]) add(at time.Time, v T) {
	w.items = append(w.items, stamped[T]{at: at, v: v})
}

// trim drops the readings taken before cutoff and returns how many are
// left.
func (w *window[T]) trim(cutoff time.Time) int {
	w.items = slices.Delete(w.items, 0, w.firstSince(cutoff))
	return len(w.items)
}

// since returns the readings taken at or after cutoff; the slice shares
// the window's array, so callers copy out of it before unlocking.
func (w *window[T]) since(cutoff time.Time) []stamped[T] {
	return w.items[w.firstSince(cutoff):]
}

// firstSince is the index of the first reading taken at or after cutoff.
func (w *window[T]) firstSince(cutoff time.Time) int {
	i := 0
	for i < len(w.items) && w.items[i].at.Before(cutoff) {
		i++
	}
	return i
}
