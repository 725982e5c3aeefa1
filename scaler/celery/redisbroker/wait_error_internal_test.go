package redisbroker

import (
	"errors"
	"testing"
)

func TestScriptErrorsKeepTheReasonAndDropTheScript(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Redis's unknown command loses the arguments it quotes",
			"ERR unknown command 'eval', with args beginning with: ' local n = #KEYS / 2 local now' '2' ",
			"ERR unknown command 'eval'"},
		{"Redis 6's backquoted wording too",
			"ERR unknown command `EVAL`, with args beginning with: `local n = #KEYS / 2`, ",
			"ERR unknown command `EVAL`"},
		{"a message quoting Lua some other way keeps its error code only",
			"ERR proxy refused: local n = #KEYS / 2",
			"ERR (the broker's message quotes the script; not shown)"},
		{"a refusal that quotes nothing is kept whole",
			"NOPERM User noscript has no permissions to run the 'evalsha' command",
			"NOPERM User noscript has no permissions to run the 'evalsha' command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scriptError(errors.New(tc.in)).Error(); got != tc.want {
				t.Errorf("scriptError = %q, want %q", got, tc.want)
			}
		})
	}
}
