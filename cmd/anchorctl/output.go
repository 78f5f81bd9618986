package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOutput writes API messages with their proto field names and every
// field present, so scripts need not guess at omitted defaults.
var jsonOutput = protojson.MarshalOptions{
	Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true,
}

// emit writes msg as JSON with --output json, else the table that render
// writes.
func (a *app) emit(msg proto.Message, render func(t *table)) error {
	if a.output == "json" {
		data, err := jsonOutput.Marshal(msg)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = fmt.Fprintf(a.out, "%s\n", data)
		return err
	}
	t := &table{w: tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)}
	render(t)
	return t.w.Flush()
}

// table writes aligned columns.
type table struct {
	w *tabwriter.Writer
}

// row writes one line of cells; an empty cell is shown as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

// field writes a "name: value" line of a detail view.
func (t *table) field(name, value string) {
	if value == "" {
		value = "-"
	}
	fmt.Fprintf(t.w, "%s:\t%s\n", name, value)
}

// blank writes an empty line.
func (t *table) blank() { fmt.Fprintln(t.w) }

func join(values []string) string { return strings.Join(values, ",") }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
