package decide

import (
	"math"
	"strconv"
)

// FormatReplicas is the one way a replica count (or a factor of one) is
// shown to people: rounded to KEDA's milli precision, halves away from
// zero, without trailing zeros (6.0625 → "6.063", 4 → "4"). JSON keeps the
// full value; every text, warning and explanation uses this. A number too
// large for milli precision to mean anything (an absurd ask, before it is
// clamped) is shown in exponent form (1e308 → "1e+308"), never as the +Inf
// its rounding would make.
func FormatReplicas(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 1e12 {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
