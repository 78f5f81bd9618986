// Package result records benchmark measurements as JSON lines and reduces
// repeated runs to their medians.
package result
