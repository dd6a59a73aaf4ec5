#!/bin/sh
# Install TeX from Debian's packages for the PDF of the book (`make pdf`,
# tests/test_pdf.py): jupyter-book's LaTeX builder with latex_engine xelatex.
#
#   texlive-xetex              xelatex (and fontspec, polyglossia)
#   texlive-latex-recommended  the LaTeX packages Sphinx's LaTeX writer loads
#   texlive-latex-extra        more of them (fncychap, tabulary, varwidth, capt-of, ...)
#   texlive-fonts-recommended  the standard fonts; tex-gyre for Sphinx's default fonts
#   latexmk                    Sphinx's LaTeX Makefile drives the runs with it
#   fonts-freefont-otf         FreeSerif / FreeSans / FreeMono, Sphinx's xelatex fonts:
#                              Greek, ∂, ⊙, ←, →, ⇒ and box drawing (─ │ ┌ ...) in text
#                              and code
#   fonts-dejavu               DejaVu, the fallback for what FreeFont lacks (𝟏, U+1D7CF)
#   poppler-utils              pdftotext / pdfinfo, with which the test reads the PDF
#
# --no-install-recommends keeps it to these (the documentation packages alone are
# gigabytes). Never fails: without root (or passwordless sudo) it only says what to do,
# and tests/test_pdf.py then skips with that reason.

PACKAGES="texlive-xetex texlive-latex-recommended texlive-latex-extra \
texlive-fonts-recommended tex-gyre latexmk fonts-freefont-otf fonts-dejavu poppler-utils"

have_all() {
    command -v xelatex >/dev/null 2>&1 && command -v latexmk >/dev/null 2>&1 \
        && command -v pdftotext >/dev/null 2>&1 \
        && fc-list 2>/dev/null | grep -q FreeSerif && fc-list 2>/dev/null | grep -q DejaVuSans
}

if have_all; then
    echo "install_tex: TeX already installed: $(command -v xelatex)"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install_tex: xelatex (or a font) not found and no root/passwordless sudo."
    echo "  Install Debian's packages:  sudo apt-get install --no-install-recommends $PACKAGES"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_tex: no apt-get here; install TeX Live with xelatex and latexmk, the"
    echo "  FreeFont and DejaVu fonts and poppler's pdftotext with your package manager."
    exit 0
fi

echo "install_tex: installing Debian's TeX Live (a few minutes) ..."
# Wait for a concurrent apt/dpkg (another install script) instead of failing at once.
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
if $APT update -qq && $APT install -y -qq --no-install-recommends $PACKAGES; then
    echo "install_tex: installed $(command -v xelatex || echo '(xelatex not on PATH?)')"
else
    echo "install_tex: apt-get failed; install manually:"
    echo "  sudo apt-get install --no-install-recommends $PACKAGES"
fi
exit 0
