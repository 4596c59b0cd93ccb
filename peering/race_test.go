//go:build race

package peering

import "time"

// honestWithin is how soon the honest pair must chat after an attack. The
// contract's 2 s holds for the node as built; the race detector makes
// every step several times slower, so its builds get a larger bound.
const honestWithin = 6 * time.Second

// raceDetector says whether the race detector is on.
const raceDetector = true
