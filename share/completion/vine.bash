# bash completion for the vine programs (vine(7)).  Installed once per
# program under share/bash-completion/completions/, as bash-completion
# loads a command's completion by its name; any one of them completes all.

# _vine_opts PROGRAM: its options; those that take an argument end in "="
_vine_opts()
{
	case $1 in
	vine-pack) printf "%s\n" "-E -f -q -h -o= -j= -l= -x=" ;;
	vine-seed) printf "%s\n" "-d -q -v -h -c= -L= -j= -i= -N= -s=" ;;
	vine-spread) printf "%s\n" "-q -v -h -s= -c= -N= -l= -u= -t= --serve --from= --origin= --secret-file= --help" ;;
	vine-submit) printf "%s\n" "-h -s= -e= -n= -r= -t= -C= --chdir= --name= --memory= --gpus= --tag= --failed --k-peer= --k-origin= --no-relay --help" ;;
	vine-worker) printf "%s\n" "-q -h -s= -c= -N= -n= -l= -i= -L= --no-serve --memory= --gpus= --help" ;;
	vine-collect) printf "%s\n" "-d -n -w -q -h -s= -o= -j=" ;;
	vine-status) printf "%s\n" "-h -s= --json --watch --state= --help" ;;
	vine-cancel) printf "%s\n" "-q -h -s= --submission= --all --help" ;;
	vine-state) printf "%s\n" "-h -s=" ;;
	vine-cache) printf "%s\n" "-n -h -c= -s= -N= --older-than= --max-size= --dry-run --help" ;;
	esac
}

_vine()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local prog=${COMP_WORDS[0]##*/} opts o takes=
	opts=$(_vine_opts "$prog")
	COMPREPLY=()

	# after "vine-seed ... --", a command and its arguments
	if [ "$prog" = vine-seed ]; then
		local i
		for ((i = 1; i < COMP_CWORD; i++)); do
			if [ "${COMP_WORDS[i]}" = -- ]; then
				if [ $((i + 1)) -eq "$COMP_CWORD" ]; then
					mapfile -t COMPREPLY < <(compgen -c -- "$cur")
				else
					mapfile -t COMPREPLY < <(compgen -f -- "$cur")
				fi
				return 0
			fi
		done
	fi
	for o in $opts; do
		[ "$o" = "$prev=" ] && takes=1
	done
	if [ -n "$takes" ]; then
		case $prev in
		-c|-o|-j|-x|-s|--secret-file|--origin)
			if [ "$prog:$prev" = vine-pack:-j ] || [ "$prog:$prev" = vine-seed:-j ]; then
				return 0  # a number
			fi
			mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
		esac
		return 0
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "${opts//=/}" -- "$cur")
		return 0
	fi
	case $prog in
	vine-pack)  mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
	vine-cache) mapfile -t COMPREPLY < <(compgen -W "list prune" -- "$cur") ;;
	vine-seed|vine-submit) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	esac
	return 0
}

complete -F _vine vine-pack vine-seed vine-spread vine-submit vine-worker vine-collect \
	vine-status vine-state vine-cache vine-cancel
