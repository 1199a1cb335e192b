#include "runtime/process_group.h"

namespace lopa {

ProcessGroup ProcessGroup::single(c10::Device device) {
  ProcessGroup pg;
  pg.world = make_self_communicator();
  pg.tp = make_self_communicator();
  pg.dp = make_self_communicator();
  pg.device = device;
  return pg;
}

}  // namespace lopa
