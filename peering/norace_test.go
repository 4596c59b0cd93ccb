//go:build !race

package peering

import "time"

// honestWithin is how soon the honest pair must chat after an attack: 2 s,
// as the contract asks.
const honestWithin = 2 * time.Second

// raceDetector says whether the race detector is on.
const raceDetector = false
