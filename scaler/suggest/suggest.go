// Package suggest finds the word someone most likely meant: the known
// metadata key behind a typo (spec) and the flag or command behind a
// mistyped one (the command line), by one rule.
package suggest

import "strings"

// Nearest returns the candidate closest to word by edit distance, ignoring
// case, when it is within a typo's reach of word: at most 2 edits, or a
// fifth of word's length for long words. Otherwise "". Of equally close
// candidates the first wins.
func Nearest(word string, candidates []string) string {
	best, bestD := "", max(2, len(word)/5)+1
	for _, c := range candidates {
		if d := distance(strings.ToLower(word), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
