package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	urfave "github.com/urfave/cli/v2"
)

// The scripts ask flynn itself for candidates: urfave/cli answers a command
// line that ends in --generate-bash-completion with the names that may
// follow, and the hidden command __apps (appNamesCommand) with the names
// of the cluster's apps, for the word after -a or --app. Every script
// passes -c/--cluster on to __apps when the command line has it.
const bashCompletion = `# flynn completion for bash: source <(flynn completion bash)
_flynn_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
  local IFS=$'\n'
  case "$prev" in
  -a|--app)
    local cluster=() i
    for ((i = 1; i < COMP_CWORD - 1; i++)); do
      case "${COMP_WORDS[i]}" in
      -c|--cluster) cluster=(-c "${COMP_WORDS[i+1]}") ;;
      esac
    done
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${cluster[@]}" __apps 2>/dev/null)" -- "$cur"))
    return
    ;;
  esac
  local words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _flynn_complete flynn
`

const zshCompletion = `#compdef flynn
# flynn completion for zsh: source <(flynn completion zsh)
_flynn() {
  local -a candidates cluster
  case "${words[CURRENT-1]}" in
  -a|--app)
    local i=${words[(i)-c]}
    (( i >= CURRENT - 1 )) && i=${words[(i)--cluster]}
    (( i < CURRENT - 1 )) && cluster=(-c "${words[i+1]}")
    candidates=("${(@f)$(${words[1]} $cluster __apps 2>/dev/null)}")
    compadd -a candidates
    return
    ;;
  esac
  candidates=("${(@f)$(${words[1]} ${words[2,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
  _describe 'flynn' candidates
}
compdef _flynn flynn
`

const fishCompletion = `# flynn completion for fish: flynn completion fish | source
function __flynn_after_app
    set -l tokens (commandline -opc)
    contains -- $tokens[-1] -a --app
end
function __flynn_apps
    set -l tokens (commandline -opc)
    set -l cluster
    for i in (seq 2 (math (count $tokens) - 1))
        if contains -- $tokens[$i] -c --cluster
            set cluster -c $tokens[(math $i + 1)]
        end
    end
    $tokens[1] $cluster __apps 2>/dev/null
end
function __flynn_candidates
    set -l tokens (commandline -opc)
    $tokens --generate-bash-completion 2>/dev/null
end
complete -c flynn -f -n 'not __flynn_after_app' -a '(__flynn_candidates)'
complete -c flynn -f -n '__flynn_after_app' -a '(__flynn_apps)'
`

func (r *runner) completionCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh|fish",
		Description: `Completes command names, flags and, after -a or --app, the cluster's app
names (of the cluster -c names, if given).

Example:
   source <(flynn completion bash)          # in ~/.bashrc
   source <(flynn completion zsh)           # in ~/.zshrc
   flynn completion fish | source           # in ~/.config/fish/config.fish`,
		Action: func(c *urfave.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(r.env.Stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(r.env.Stdout, zshCompletion)
			case "fish":
				fmt.Fprint(r.env.Stdout, fishCompletion)
			default:
				return usageError(c, "want bash, zsh or fish")
			}
			return nil
		},
	}
}

// appNamesTimeout bounds __apps: a completion that hangs is worse than none.
const appNamesTimeout = 2 * time.Second

// appNamesCommand is __apps, for the completion scripts: the names of the
// cluster's apps, one a line, and nothing at all on any failure, so a
// shell never shows an error in the middle of a command line.
func (r *runner) appNamesCommand() *urfave.Command {
	return &urfave.Command{
		Name:        "__apps",
		Usage:       "print the cluster's app names, for shell completion",
		Description: "Example:\n   flynn -c staging __apps",
		Hidden:      true,
		Action: func(c *urfave.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, appNamesTimeout)
			defer cancel()
			api, err := r.connect(c)
			if err != nil {
				return nil
			}
			apps, err := api.Apps(ctx)
			if err != nil {
				return nil
			}
			names := make([]string, 0, len(apps))
			for _, a := range apps {
				names = append(names, a.Name)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintln(r.env.Stdout, n)
			}
			return nil
		},
	}
}
