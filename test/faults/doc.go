// Package faults is the fault matrix: the real `montage-scaler serve`
// against its three kinds of source (a Celery broker on redis-server, a
// Prometheus server, an iCalendar feed), each killed, hung, fed garbage and
// flapped, with what the scaler must do in every cell asserted and printed
// as a table (README's "Fault matrix").
//
// The test is behind the build tag faults (`make faults`): its cells run
// side by side for about three minutes and hold timing bounds that a
// crowded `make test` should not have to share the machine with.
package faults
