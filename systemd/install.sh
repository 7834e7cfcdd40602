#!/usr/bin/env bash
# Install agecam as a systemd service on a till, from this checkout. Run as root.
#
#   sudo systemd/install.sh [--assets DIR]      install or upgrade, enable and start agecam.service
#   sudo systemd/install.sh --uninstall         stop, disable and remove the program (keeps config and data)
#   sudo systemd/install.sh --uninstall --purge also delete /etc/agecam and /var/lib/agecam (the event log)
#
# --assets DIR copies the detector and clips from DIR (offline tills) instead of downloading them.
set -euo pipefail

PREFIX=/opt/agecam  # the paths in agecam.service
CONFIG_DIR=/etc/agecam
STATE_DIR=/var/lib/agecam
UNIT=/etc/systemd/system/agecam.service
MODEL=agecam-mobilenetv2-int8.onnx
REPO=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "install.sh: error: $*" >&2; exit 1; }

uninstall() {
    systemctl disable --now agecam.service 2>/dev/null || true
    rm -f "$UNIT"
    systemctl daemon-reload
    rm -rf "$PREFIX"
    if [[ ${1:-} == --purge ]]; then
        rm -rf "$CONFIG_DIR" "$STATE_DIR"
        userdel agecam 2>/dev/null || true
        echo "agecam removed with its configuration and event log"
    else
        echo "agecam removed; kept $CONFIG_DIR and $STATE_DIR (use --uninstall --purge to delete them)"
    fi
}

install_program() {
    [[ -f $REPO/models/$MODEL ]] || die "$REPO/models/$MODEL is missing: install from a full checkout"
    # The till runtime: ONNX Runtime's GPU build where an NVIDIA driver answers, else the CPU build
    # (AGECAM_ORT=cpu|gpu chooses); no torch, no matplotlib. One build per venv: drop the other first.
    local ort=${AGECAM_ORT:-$(nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)} other=onnxruntime-gpu
    [[ $ort == gpu ]] && other=onnxruntime
    [[ $ort == cpu || $ort == gpu ]] || die "AGECAM_ORT must be cpu or gpu, not $ort"
    python3 -m venv "$PREFIX/venv"
    "$PREFIX/venv/bin/pip" install -q --upgrade pip
    "$PREFIX/venv/bin/pip" uninstall -q -y opencv-python "$other" 2>/dev/null || true
    "$PREFIX/venv/bin/pip" install -q "$REPO[$ort]"
    install -d -m 0755 "$PREFIX/models"
    install -m 0644 "$REPO/models/$MODEL" "$REPO/models/MODEL_CARD.md" "$REPO/README.md" "$PREFIX/models/"
    mv "$PREFIX/models/README.md" "$PREFIX/README.md"
}

install_assets() {
    local source=${1:-}
    if [[ -n $source ]]; then
        install -d "$PREFIX/assets"
        cp -r "$source/models" "$source/videos" "$PREFIX/assets/"
    fi
    AGECAM_ASSETS="$PREFIX/assets" "$PREFIX/venv/bin/agecam" assets fetch
    # The service runs as agecam, not root: files copied from a 0600 source, or fetched by an older agecam
    # (which left them 0600), would fail its detector check at every start.
    chmod -R a+rX "$PREFIX/assets"
}

install_config() {
    install -d -m 0750 -g agecam "$CONFIG_DIR"
    if [[ ! -f $CONFIG_DIR/config.yaml ]]; then
        sed "s#^  path: models/$MODEL#  path: $PREFIX/models/$MODEL#" "$REPO/config.yaml" > "$CONFIG_DIR/config.yaml"
        chmod 0640 "$CONFIG_DIR/config.yaml"
        chgrp agecam "$CONFIG_DIR/config.yaml"
    fi
    AGECAM_ASSETS="$PREFIX/assets" "$PREFIX/venv/bin/agecam" --config "$CONFIG_DIR/config.yaml" config check
}

main() {
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0)"
    case ${1:-} in
        --uninstall) uninstall "${2:-}"; return ;;
        --assets) [[ -d ${2:-} ]] || die "--assets needs a folder with models/ and videos/"; local assets=$2 ;;
        "") local assets="" ;;
        *) die "unknown option $1 (see the top of $0)" ;;
    esac
    id agecam >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin --user-group agecam
    usermod -a -G video agecam
    install_program
    install_assets "$assets"
    install_config
    install -m 0644 "$REPO/systemd/agecam.service" "$UNIT"
    systemctl daemon-reload
    systemctl enable --now agecam.service
    echo "agecam installed: systemctl status agecam; journalctl -u agecam -f"
}

main "$@"
