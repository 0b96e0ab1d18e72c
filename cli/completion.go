package cli

import (
	"fmt"

	urfave "github.com/urfave/cli/v2"
)

// The scripts ask flynn itself for candidates: urfave/cli answers a command
// line that ends in --generate-bash-completion with the names that may
// follow.
const bashCompletion = `# flynn completion for bash: source <(flynn completion bash)
_flynn_complete() {
  local words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${words[@]}" --generate-bash-completion 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _flynn_complete flynn
`

const zshCompletion = `#compdef flynn
# flynn completion for zsh: source <(flynn completion zsh)
_flynn() {
  local -a candidates
  candidates=("${(@f)$(${words[1]} ${words[2,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
  _describe 'flynn' candidates
}
compdef _flynn flynn
`

func (r *runner) completionCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh",
		Description: `Example:
   source <(flynn completion bash)     # in ~/.bashrc
   source <(flynn completion zsh)      # in ~/.zshrc`,
		Action: func(c *urfave.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(r.env.Stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(r.env.Stdout, zshCompletion)
			default:
				return usageError(c, "want bash or zsh")
			}
			return nil
		},
	}
}
