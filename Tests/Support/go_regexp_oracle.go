// The reference for relabel regexes: Go's own regexp package, which Prometheus
// compiles them with. RelabelOracleTests runs it (`go run`, standard library only)
// and holds RelabelRegex against it on generated patterns.
//
// Input, one JSON object a line: {"pattern": P, "anchor": "s" | "n", "values": [...]}.
// "s" anchors as Prometheus 3 (`^(?s:P)$`), "n" as Prometheus 2 (`^(?:P)$`).
// Output, one JSON object a line, in order: {"error": "" or the compile error,
// "matches": [null or FindStringSubmatchIndex, one per value],
// "expansions": [the template expanded per matching value, "" for the others],
// "replaced": [ReplaceAllString(value, template), one per value]}.
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
)

type request struct {
	Pattern  string   `json:"pattern"`
	Anchor   string   `json:"anchor"`
	Values   []string `json:"values"`
	Template string   `json:"template"`
}

type response struct {
	Error      string   `json:"error"`
	Matches    [][]int  `json:"matches"`
	Expansions []string `json:"expansions"`
	Replaced   []string `json:"replaced"`
}

func main() {
	input := bufio.NewScanner(os.Stdin)
	input.Buffer(make([]byte, 1<<20), 64<<20)
	output := bufio.NewWriter(os.Stdout)
	defer output.Flush()
	encoder := json.NewEncoder(output)
	for input.Scan() {
		var req request
		if err := json.Unmarshal(input.Bytes(), &req); err != nil {
			panic(err)
		}
		anchored := "^(?s:" + req.Pattern + ")$"
		if req.Anchor == "n" {
			anchored = "^(?:" + req.Pattern + ")$"
		}
		var resp response
		re, err := regexp.Compile(anchored)
		if err != nil {
			resp.Error = err.Error()
		} else {
			for _, value := range req.Values {
				match := re.FindStringSubmatchIndex(value)
				resp.Matches = append(resp.Matches, match)
				expansion := ""
				if match != nil {
					expansion = string(re.ExpandString(nil, req.Template, value, match))
				}
				resp.Expansions = append(resp.Expansions, expansion)
				resp.Replaced = append(resp.Replaced, re.ReplaceAllString(value, req.Template))
			}
		}
		if err := encoder.Encode(resp); err != nil {
			panic(err)
		}
	}
}
