// grocker fsck and grocker purge: the store's own upkeep. (Filled in by the store-upkeep work.)

#include "commands.hh"

namespace grocker {

Runners registerStoreCommands(CLI::App&, GlobalOptions&) { return {}; }

} // namespace grocker
