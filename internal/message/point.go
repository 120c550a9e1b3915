package message

import "math"

// Point is a place on Earth in WGS 84 degrees: the one representation of a
// location that every contract shares (fleet.Point, rides.Point), as Money is of
// an amount.
type Point struct {
	Lat float64 `json:"lat" minimum:"-90" maximum:"90" example:"52.5163" doc:"latitude in degrees (WGS 84)"`
	Lng float64 `json:"lng" minimum:"-180" maximum:"180" example:"13.3777" doc:"longitude in degrees (WGS 84)"`
}

// Valid reports whether p is a finite latitude in [-90, 90] and longitude in
// [-180, 180].
func (p Point) Valid() bool {
	return !math.IsNaN(p.Lat) && !math.IsNaN(p.Lng) && p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}
