#compdef metactl

__metactl_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__metactl_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __metactl_complete "${completions[@]:0:-1}"
    fi
}

__metactl_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_metactl() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'devices:List block devices: size, kind, model/serial, signature, use and set membership.'
            'create:Create a concat, stripe, RAID-5, RAID-6, soft partition or mirror volume (metainit).'
            'clear:Delete a volume (metaclear).'
            'grow:Grow a volume: append a row to a concat/stripe, columns to a RAID-5, space to a soft partition (metattach).'
            'status:Show volumes and hot spare pools (metastat).'
            'db:Manage the state database replicas of a set (metadb).'
            'import:Find sets by the labels on their devices and record them on this host (metaimport).'
            'serve:Serve the set'\''s volumes over NBD and run resyncs (the md driver'\''s job).'
            'replace:Replace or re-enable a RAID-5 or RAID-6 component (metareplace).'
            'hs:Manage hot spare pools (metainit hsp, metahs).'
            'set:Change volume parameters (metaparam).'
            'check:Verify a RAID-5 or RAID-6 volume'\''s parity against its data, line by line, or a mirror'\''s sides against each other (scrub; md'\''s check/repair).'
            'recover:Rebuild the soft partitions of a volume from their watermarks (metarecover -p).'
            'attach:Add a side to a mirror and resync it (metattach).'
            'detach:Remove a side from a mirror (metadetach).'
            'offline:Stop using a side of a mirror for a while (metaoffline).'
            'online:Bring a side of a mirror back and resync what it missed (metaonline).'
            'monitor:Follow the events of a served set: failures, hot spares, resyncs, checks, quorum (mdadm --monitor).'
            'map:Give the host a block device for a volume (as rbd map does); prints the device.'
            'unmap:Tear down the block device metactl map gave a volume.'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        devices|create|clear|grow|status|db|import|serve|replace|hs|set|check|recover|attach|detach|offline|online|monitor|map|unmap|help)
            "_metactl_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_metactl_devices() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--all[Also list empty (detached) loop devices.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_create() {
    local -i ret=1
    local -ar _layout=('concat' 'stripe' 'raid5' 'raid6' 'softpart' 'mirror')
    local -ar ___write_log=('auto' 'none')
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:'
        ':layout:{__metactl_complete "${_layout[@]}"}'
        '*:devices:_files'
        '*-o[softpart\: an extent'\''s data offset in the parent (repeat with -b for several extents; a multiple of 4k).]:offset:'
        '*-b[softpart\: the size of the extent at the -o before it.]:size:'
        '-i[Interlace (stripe unit), 8k–100m.]:size:'
        '--hot-spare-pool[Hot spare pool for a RAID-5 or RAID-6 volume, or for a mirror'\''s sides (SVM'\''s metainit -h; -h is help here).]:hsp:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\'')"});_describe -V "" list}'
        '--no-init[RAID-5 and RAID-6\: components are known to be zero; skip parity initialisation.]'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature (file system, partition table, …).]'
        '--no-resync[mirror\: the sides hold the same data already (new, zeroed disks)\: no resync.]'
        '--write-log[RAID-5, RAID-6\: log every write before it is made in place (auto\: the default for RAID-5) or not (none\: the default for RAID-6).]:auto|none:{__metactl_complete "${___write_log[@]}"}'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_clear() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '*:names:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '(--force -f)'{--force,-f}'[Delete even while open or resyncing.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_grow() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '*:devices:_files'
        '-i[Interlace of a new stripe row, 8k–100m.]:size:'
        '--wait[Wait for the zeroing of new RAID-5 columns however long it takes.]'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature (file system, partition table, …).]'
        '--cancel[Release the devices of an interrupted RAID-5 grow instead of finishing it.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_status() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '*:names:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''{print $1}'\'')"});_describe -V "" list}'
        '-p[Print md.tab lines (and metactl commands) that recreate the configuration.]'
        '-c[Print one line per volume.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_db() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'create:Create the state database of a set (metadb -a -f).'
            'add:Add state database replicas on new devices (metadb -a).'
            'delete:Delete the state database replicas on devices (metadb -d).'
            'status:Show the state database replicas and the quorum (metadb -i).'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        create|add|delete|status)
            "_metactl_db_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_metactl_db_create() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--copies[Replicas on each device (1–16).]:copies:'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature.]'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_db_add() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--copies[Replicas on each device (1–16).]:copies:'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature.]'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_db_delete() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '(--force -f)'{--force,-f}'[Delete even below a safe count, or without quorum.]'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_db_status() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_import() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--no-scan[Only look at the given paths and the registry'\''s, not at every block device.]'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_serve() {
    local -i ret=1
    local -ar ___tls=('off' 'allow' 'require')
    local -ar ___cache=('none' 'writeback')
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--socket[Unix socket for NBD (default <run-dir>/<set>.nbd).]:path:'
        '--listen[Also listen for NBD on TCP HOST\:PORT. A non-loopback HOST needs TLS (--tls-certificates or --tls-psk) or --insecure.]:host\:port:'
        '--tls[TLS on the NBD sockets\: off, allow (clients choose) or require (default\: require when --tls-certificates or --tls-psk is given, else off).]:mode:{__metactl_complete "${___tls[@]}"}'
        '--tls-certificates[x509 TLS\: a directory with server-cert.pem and server-key.pem (and ca-cert.pem for --tls-verify-peer), as for nbdkit.]:dir:_files -/'
        '--tls-psk[Pre-shared-key TLS\: a psktool file of USERNAME\:HEXKEY lines; only clients holding a key connect.]:file:_files'
        '--tls-verify-peer[With --tls-certificates\: accept only clients whose certificate ca-cert.pem signed.]'
        '--insecure[Allow --listen on a non-loopback address without requiring TLS (anyone who reaches it can read and write).]'
        '--cache[Data I/O on the components\: none (O_DIRECT, the default) or writeback (through the page cache; flushes still reach the disk).]:mode:{__metactl_complete "${___cache[@]}"}'
        '--read-only[Export every volume read-only (clients cannot write, trim or zero; resyncs still run).]'
        '--metrics[Export Prometheus metrics\: HOST\:PORT serves GET /metrics; a PATH ending in .prom is rewritten every 10 s (node_exporter'\''s textfile collector).]:host\:port|path:'
        '--restore-maps[Once listening, map again every volume recorded as mapped (metactl map) whose mapping is gone.]'
        '--unmap-on-exit[At shutdown, unmap every mapped volume first (default\: mappings stay and reconnect when a server returns).]'
        '*--read-only-volume[Export this volume read-only (repeatable); the others stay writable.]:name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '*:names:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_replace() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '*:devices:_files'
        '--enable[Re-enable this component in place.]:dev:_files'
        '--wait[Follow the resync until it ends (progress on stderr).]'
        '(--force -f)'{--force,-f}'[Proceed on a Last Erred volume; overwrite a signature on NEW.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_hs() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'create:Create a pool, optionally with spares.'
            'add:Add spares to a pool.'
            'delete:Remove spares from a pool (or the whole pool when no device is named).'
            'enable:Return Broken spares to Available after the fault is fixed.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        create|add|delete|enable)
            "_metactl_hs_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_metactl_hs_create() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':pool:'
        '*:devices:_files'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_hs_add() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':pool:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\'')"});_describe -V "" list}'
        '*:devices:_files'
        '(--force -f)'{--force,-f}'[Overwrite devices that carry a signature.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_hs_delete() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':pool:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\'')"});_describe -V "" list}'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_hs_enable() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '*:devices:_files'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_set() {
    local -i ret=1
    local -ar ___write_log=('auto' 'none')
    local -ar ___read_policy=('roundrobin' 'geometric' 'first')
    local -ar ___write_policy=('parallel' 'serial')
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--hot-spare-pool[Pool to use (created empty if it does not exist, as in create), or none.]:hsp|none:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 == "h" {print $1}'\''; echo none)"});_describe -V "" list}'
        '--resync-rate[Resync rate limits per second.]:min\:max:'
        '--write-log[RAID-5, RAID-6\: log writes (auto) or not (none); switches online.]:auto|none:{__metactl_complete "${___write_log[@]}"}'
        '--log-device[RAID-5, RAID-6\: a device for the write log (a fast SSD), or none.]:dev|none:_files'
        '(--force -f)'{--force,-f}'[With --log-device\: overwrite a device that carries a signature.]'
        '--read-policy[Mirror\: which side serves a read (metaparam -r).]:roundrobin|geometric|first:{__metactl_complete "${___read_policy[@]}"}'
        '--write-policy[Mirror\: write the sides at once or in turn (metaparam -w).]:parallel|serial:{__metactl_complete "${___write_policy[@]}"}'
        '--pass[Mirror\: SVM'\''s pass number 0-9 (metaparam -p; recorded and shown).]:n:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_check() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--repair[Rewrite the parity of the lines where it does not match the data (a mirror\: the other sides from the first).]'
        '--stop[Stop the running check.]'
        '--wait[Follow the check until it ends (progress on stderr).]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_recover() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':parent:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '(-n --dry-run)'{-n,--dry-run}'[List what would be recovered; change nothing.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_attach() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':mirror:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        ':side:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--no-resync[The side holds the mirror'\''s data already\: no resync.]'
        '(--force -f)'{--force,-f}'[Attach even while clients have the volume open (they are disconnected).]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_detach() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':mirror:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        ':side:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '(--force -f)'{--force,-f}'[Detach a side that is not Okay.]'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_offline() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':mirror:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        ':side:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_online() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':mirror:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        ':side:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        '--json[Print one JSON document (its schema is in this command'\''s description; errors\: metactl(8)).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_monitor() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        '--json[Print one JSON object per line.]'
        '--program[Run this shell command for every event (the event in its environment).]:cmd:'
        '--replay[First print up to N of the most recent events (at most 64).]:n:'
        '--count[Exit after N events.]:n:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_map() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':name:{local -a list;list=(${(f)"$(metactl status -c 2>/dev/null | awk '\''$2 != "h" {print $1}'\'')"});_describe -V "" list}'
        ':device:'
        '--read-only[Map read-only.]'
        '--socket[The server'\''s NBD Unix socket (default <run-dir>/<set>.nbd).]:path:'
        '--reconnect-timeout[Seconds a request waits for an absent server before it fails with EIO (default 60).]:seconds:'
        '--tls-certificates[A server with --tls require and x509\: connect with TLS, trusting DIR/ca-cert.pem (and presenting DIR/client-cert.pem when it has one).]:dir:'
        '--tls-psk[A server with --tls require and PSK\: connect with TLS using the key of --tls-username in FILE (psktool'\''s format).]:file:'
        '--tls-username[The PSK user (default\: the current user).]:user:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_unmap() {
    local -i ret=1
    local -ar arg_specs=(
        '(-s --set)'{-s,--set}'[The set to act on (default\: local).]:set:'
        '--config-dir[Where this host records the sets it knows (env METACTL_CONFIG_DIR).]:dir:'
        '--run-dir[Sockets, PID and lock files (env METACTL_RUN_DIR).]:dir:'
        '(--quiet -q)'{--quiet,-q}'[Print less.]'
        '(--verbose -v)'{--verbose,-v}'[Print more.]'
        ':target:'
        '(--force -f)'{--force,-f}'[Unmap even while the device is in use.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_metactl_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _metactl ]]; then
    _metactl "${@}"
else
    compdef _metactl metactl
fi
