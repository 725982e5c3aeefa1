package source

import (
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/spec"
)

// LimitFlag is one process-wide limit: the serve flag that sets it and its
// default.
type LimitFlag struct {
	Kind quota.Kind
	// Scope is "process", "namespace" or "upstream" (per broker).
	Scope   string
	Flag    string
	Default int
	Usage   string
}

// LimitFlags lists every limit of the Set, in the order serve documents
// them. The defaults leave room for a platform of a few hundred
// ScaledObjects while keeping the scaler from taking a broker's client
// slots (a broker costs one connection, the worker heartbeats one per
// Redis server) or a process's memory.
func LimitFlags() []LimitFlag {
	return []LimitFlag{
		{quota.Brokers, "process", "max-brokers", 64, "distinct Celery brokers (address, db, credentials) the process polls"},
		{quota.Brokers, "namespace", "max-brokers-per-namespace", 16, "distinct Celery brokers the ScaledObjects of one namespace may name"},
		{quota.Lists, "upstream", "max-lists-per-broker", 10000, "Redis lists in one broker's shared poll, summed over its watches (metadata versions kept for --idle-after included)"},
		{quota.Lists, "namespace", "max-lists-per-namespace", 5000, "Redis lists the watches of one namespace may have polled"},
		{quota.Lists, "process", "max-lists", 20000, "Redis lists the process polls, summed over its watches"},
		{quota.PrometheusEndpoints, "process", "max-prometheus-endpoints", 64, "distinct prometheusURLs the process queries"},
		{quota.PrometheusEndpoints, "namespace", "max-prometheus-endpoints-per-namespace", 16, "distinct prometheusURLs of one namespace"},
		{quota.ScrapeTargets, "process", "max-scrape-targets", 256, "distinct metricsURLs entries the process scrapes"},
		{quota.ScrapeTargets, "namespace", "max-scrape-targets-per-namespace", 64, "distinct metricsURLs entries of one namespace"},
		{quota.Feeds, "process", "max-feeds", 32, "distinct calendar feeds the process fetches"},
		{quota.Feeds, "namespace", "max-feeds-per-namespace", 8, "distinct calendar feeds of one namespace"},
	}
}

// Limits turns the values of LimitFlags (by flag name; a flag not given
// takes its default; 0 or less is no limit) into the ledger's limits.
func Limits(values map[string]int) map[quota.Kind]quota.Limits {
	out := map[quota.Kind]quota.Limits{}
	for _, f := range LimitFlags() {
		v, ok := values[f.Flag]
		if !ok {
			v = f.Default
		}
		l := out[f.Kind]
		lim := quota.Limit{Max: v, Flag: "--" + f.Flag}
		switch f.Scope {
		case "process":
			l.Process = lim
		case "namespace":
			l.Namespace = lim
		case "upstream":
			l.Upstream = lim
		}
		out[f.Kind] = l
	}
	return out
}

// claims are everything a watch of sp holds in the process.
func claims(sp *spec.Spec) []quota.Claim {
	var out []quota.Claim
	for _, p := range sp.Parts {
		out = append(out, p.Config.Claims()...)
	}
	return out
}
