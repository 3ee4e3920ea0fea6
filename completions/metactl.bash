#!/bin/bash

__metactl_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__metactl_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__metactl_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__metactl_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_metactl() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(--version -h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __metactl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    devices|create|clear|grow|status|db|import|serve|replace|hs|set|check|recover|attach|detach|offline|online|monitor|map|unmap|help)
        # Offer subcommand argument completions
        "_metactl_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'devices create clear grow status db import serve replace hs set check recover attach detach offline online monitor map unmap help' -- "${cur}"))
        ;;
    esac
}

_metactl_devices() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --all --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac
}

_metactl_create() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --no-init --force -f --no-resync --json --version -h --help)
    repeating_options=(-o -b)
    non_repeating_options=(-s --set --config-dir --run-dir -i --hot-spare-pool --write-log)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '-o')
        return
        ;;
    '-b')
        return
        ;;
    '-i')
        return
        ;;
    '--hot-spare-pool')
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\''')"
        return
        ;;
    '--write-log')
        __metactl_add_completions -W 'auto'$'\n''none'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    2)
        __metactl_add_completions -W 'concat'$'\n''stripe'$'\n''raid5'$'\n''raid6'$'\n''softpart'$'\n''mirror'
        return
        ;;
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_clear() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_grow() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --wait --force -f --cancel --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir -i)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '-i')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_status() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v -p -c --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''{print $1}'\''')"
        return
        ;;
    esac
}

_metactl_db() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __metactl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    create|add|delete|status)
        # Offer subcommand argument completions
        "_metactl_db_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'create add delete status' -- "${cur}"))
        ;;
    esac
}

_metactl_db_create() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --copies)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--copies')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_db_add() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --copies)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--copies')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_db_delete() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_db_status() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac
}

_metactl_import() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --no-scan --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_serve() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --tls-verify-peer --insecure --read-only --restore-maps --unmap-on-exit --version -h --help)
    repeating_options=(--read-only-volume)
    non_repeating_options=(-s --set --config-dir --run-dir --socket --listen --tls --tls-certificates --tls-psk --cache --metrics)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--socket')
        return
        ;;
    '--listen')
        return
        ;;
    '--tls')
        __metactl_add_completions -W 'off'$'\n''allow'$'\n''require'
        return
        ;;
    '--tls-certificates')
        __metactl_add_completions -d
        return
        ;;
    '--tls-psk')
        __metactl_add_completions -f
        return
        ;;
    '--cache')
        __metactl_add_completions -W 'none'$'\n''writeback'
        return
        ;;
    '--metrics')
        return
        ;;
    '--read-only-volume')
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_replace() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --wait --force -f --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --enable)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--enable')
        __metactl_add_completions -f
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_hs() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __metactl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    create|add|delete|enable)
        # Offer subcommand argument completions
        "_metactl_hs_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'create add delete enable' -- "${cur}"))
        ;;
    esac
}

_metactl_hs_create() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_hs_add() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\''')"
        return
        ;;
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_hs_delete() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\''')"
        return
        ;;
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_hs_enable() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __metactl_add_completions -f
        return
        ;;
    esac
}

_metactl_set() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --hot-spare-pool --resync-rate --write-log --log-device --read-policy --write-policy --pass)
    __metactl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--hot-spare-pool')
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\''; echo none')"
        return
        ;;
    '--resync-rate')
        return
        ;;
    '--write-log')
        __metactl_add_completions -W 'auto'$'\n''none'
        return
        ;;
    '--log-device')
        __metactl_add_completions -f
        return
        ;;
    '--read-policy')
        __metactl_add_completions -W 'roundrobin'$'\n''geometric'$'\n''first'
        return
        ;;
    '--write-policy')
        __metactl_add_completions -W 'parallel'$'\n''serial'
        return
        ;;
    '--pass')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_check() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --repair --stop --wait --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_recover() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v -n --dry-run --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_attach() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --no-resync --force -f --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    2)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_detach() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    2)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_offline() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    2)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_online() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    2)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_monitor() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --json --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --program --replay --count)
    __metactl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--program')
        return
        ;;
    '--replay')
        return
        ;;
    '--count')
        return
        ;;
    esac
}

_metactl_map() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --read-only --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir --socket --reconnect-timeout --tls-certificates --tls-psk --tls-username)
    __metactl_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    '--socket')
        return
        ;;
    '--reconnect-timeout')
        return
        ;;
    '--tls-certificates')
        return
        ;;
    '--tls-psk')
        return
        ;;
    '--tls-username')
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __metactl_add_completions -W "$(eval 'metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\''')"
        return
        ;;
    esac
}

_metactl_unmap() {
    repeating_flags=()
    non_repeating_flags=(--quiet -q --verbose -v --force -f --version -h --help)
    repeating_options=()
    non_repeating_options=(-s --set --config-dir --run-dir)
    __metactl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '-s'|'--set')
        return
        ;;
    '--config-dir')
        return
        ;;
    '--run-dir')
        return
        ;;
    esac
}

_metactl_help() {
    repeating_flags=()
    non_repeating_flags=(--version)
    repeating_options=()
    non_repeating_options=()
    __metactl_offer_flags_options -1
}

complete -o filenames -F _metactl metactl
