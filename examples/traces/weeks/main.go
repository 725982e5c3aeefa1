// Command weeks writes the multi-week example traces of examples/traces,
// for the forecast: weeks.csv, a regular weekly habit, and noisy-weeks.csv,
// the same kind of habit with the noise of real creators (random with a
// seed, so the file is reproducible).
//
//	go run ./examples/traces/weeks -out examples/traces [-seed 14]
//
// Both start on Monday 2 March 2026, midnight in Europe/Berlin, in 5-minute
// steps written in UTC, and cross the last Sunday of March (clocks forward):
// the creators' habits keep their local hour, so in UTC they move an hour
// earlier from 30 March on.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

func main() {
	out := flag.String("out", ".", "folder to write weeks.csv and noisy-weeks.csv into")
	seed := flag.Uint64("seed", DefaultSeed, "seed of noisy-weeks.csv's noise")
	flag.Parse()
	if err := run(*out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "weeks:", err)
		os.Exit(1)
	}
}

// DefaultSeed is the seed of the committed noisy-weeks.csv.
const DefaultSeed = 14

func run(dir string, seed uint64) error {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return err
	}
	if err := write(filepath.Join(dir, "weeks.csv"), func(w io.Writer) error { return regular(w, loc) }); err != nil {
		return err
	}
	return write(filepath.Join(dir, "noisy-weeks.csv"), func(w io.Writer) error { return noisy(w, loc, seed) })
}

func write(path string, f func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(fh)
	if err := f(bw); err != nil {
		fh.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

const step = 5 * time.Minute

// steps calls f for every 5-minute step of weeks weeks from Monday 2 March
// 2026 in loc, with the step's start and its local time.
func steps(loc *time.Location, weeks int, f func(at, local time.Time) error) error {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 0, 7*weeks)
	for at := start; at.Before(end); at = at.Add(step) {
		if err := f(at.UTC(), at.In(loc)); err != nil {
			return err
		}
	}
	return nil
}

func hours(t time.Time) float64 { return float64(t.Hour()) + float64(t.Minute())/60 }

func weekday(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }

// regular is five weeks of a weekday-evening habit kept like clockwork:
// uploads after work, 40 tasks a minute from 18:00 to 18:30 (52 on
// Wednesdays, the weekly peak) from the first minute, 27 s each, half that
// in the last 5 minutes; a Saturday-morning batch; a trickle by day and night. No
// randomness: each step's tasks carry the fraction over to the next.
func regular(w io.Writer, loc *time.Location) error {
	fmt.Fprintln(w, "time,tasks,requests,service_seconds")
	carry := 0.0
	return steps(loc, 5, func(at, lt time.Time) error {
		h := hours(lt)
		rate, service := 0.1, 20 // tasks a minute, seconds
		if h >= 8 && h < 23 {
			rate = 0.5
		}
		if weekday(lt) && h >= 18 && h < 18.5 {
			level := 40.0
			if lt.Weekday() == time.Wednesday {
				level = 52
			}
			if h >= 18.5-5.0/60 {
				level /= 2
			}
			rate, service = rate+level, 27
		}
		if lt.Weekday() == time.Saturday && h >= 10 && h < 12 {
			rate += 10
		}
		exact := rate*step.Minutes() + carry
		tasks := math.Floor(exact)
		carry = exact - tasks
		requests := 250.0
		if h >= 8 && h < 23 {
			requests = 850
		}
		_, err := fmt.Fprintf(w, "%s,%d,%d,%d\n", at.Format(time.RFC3339), int(tasks), int(math.Round(requests*step.Minutes()))+20*int(tasks), service)
		return err
	})
}

// noisy is six weeks of a weekday-evening habit as real creators keep it:
// each weekday's rush starts around 18:00 (normal, σ 7 min), lasts 30 min
// ± 6 min, at 40 tasks a minute × 0.75–1.25 (Wednesdays × 1.3: the weekly
// peak), ramping over 5 minutes; about one weekday in ten there is none.
// Arrivals are Poisson, service times 27 s ± 10 % at the rush and 20 s
// otherwise; a Saturday-morning batch; a trickle by day and night. Week 4
// has a one-off: a video went viral on Saturday afternoon (40 more tasks a
// minute, 14:00–16:00).
func noisy(w io.Writer, loc *time.Location, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f6e74616765))
	fmt.Fprintln(w, "time,tasks,requests,service_seconds")
	type rush struct{ from, to, level float64 }
	var today rush
	var day time.Time
	return steps(loc, 6, func(at, lt time.Time) error {
		if d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc); !d.Equal(day) {
			day = d
			today = rush{}
			if weekday(lt) && rng.Float64() >= 0.1 {
				from := 18 + rng.NormFloat64()*7/60
				today = rush{from: from, to: from + (30+rng.Float64()*12-6)/60, level: 40 * (0.75 + 0.5*rng.Float64())}
				if lt.Weekday() == time.Wednesday {
					today.level *= 1.3
				}
			}
		}
		h := hours(lt) + 2.5/60
		rate, service := 0.1, 20.0 // tasks a minute, seconds
		if h >= 8 && h < 23 {
			rate = 0.5
		}
		if today.level > 0 {
			ramp := math.Min(math.Max(math.Min(h-today.from, today.to-h)/(5.0/60), 0), 1)
			if ramp > 0 {
				rate += today.level * ramp
				service = 27 * (0.9 + 0.2*rng.Float64())
			}
		}
		if lt.Weekday() == time.Saturday && h >= 10 && h < 12 {
			rate += 10
		}
		if start := time.Date(2026, 3, 28, 0, 0, 0, 0, loc); lt.Year() == start.Year() && lt.YearDay() == start.YearDay() && h >= 14 && h < 16 {
			rate += 40
		}
		tasks := poisson(rng, rate*step.Minutes())
		requests := 250.0
		if h >= 8 && h < 23 {
			requests = 850
		}
		_, err := fmt.Fprintf(w, "%s,%d,%d,%.1f\n", at.Format(time.RFC3339), tasks, int(math.Round(requests*step.Minutes()))+20*tasks, service)
		return err
	})
}

// poisson draws from a Poisson distribution of mean m (Knuth's method,
// fine for the means here, at most a few hundred).
func poisson(rng *rand.Rand, m float64) int {
	limit, p, k := math.Exp(-m), 1.0, 0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}
