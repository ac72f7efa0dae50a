// Command gensegment regenerates match/segment_model.json, the built-in
// model for Segment traits (go generate ./match).
package main

import (
	"log"

	"github.com/idgraph/idgraph/match"
)

func main() {
	m, err := match.TrainSegmentModel()
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Save("segment_model.json"); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote segment_model.json (%s)", m.Version)
}
