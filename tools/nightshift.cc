// nightshift: the engine's command line. Everything lives in src/cli.
#include "cli/cli.h"

int main(int argc, char** argv) { return ns::cli::Main(argc, argv); }
