#include "mount-plan.hh"

#include "grocker/strings.hh"

#include <sys/mount.h>

namespace grocker::sandbox {

namespace {

using Kind = MountOp::Kind;
using Point = MountOp::Point;

// /dev as containers have it: a small tmpfs with the host's harmless devices bound on empty
// files, a devpts instance of its own, and the usual links into /proc.
void planDev(MountPlan& plan)
{
    const std::string step = "making /dev";
    plan.push_back({.kind = Kind::Tmpfs,
                    .step = step,
                    .target = "/dev",
                    .flags = MS_NOSUID | MS_NOEXEC,
                    .data = "mode=0755,size=65536k"});
    for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
        auto path = std::string("/dev/") + node;
        plan.push_back({.kind = Kind::DevNode,
                        .step = step,
                        .source = path,
                        .target = path,
                        .point = Point::InNewTmpfs});
    }
    plan.push_back({.kind = Kind::Mkdir,
                    .step = step,
                    .target = "/dev/pts",
                    .point = Point::InNewTmpfs,
                    .mode = 0755});
    plan.push_back({.kind = Kind::Mkdir,
                    .step = step,
                    .target = "/dev/shm",
                    .point = Point::InNewTmpfs,
                    .mode = 01777});
    plan.push_back({.kind = Kind::Devpts,
                    .step = step,
                    .target = "/dev/pts",
                    .point = Point::InNewTmpfs,
                    .flags = MS_NOSUID | MS_NOEXEC,
                    .data = "newinstance,ptmxmode=0666,mode=0620"});
    plan.push_back({.kind = Kind::Tmpfs,
                    .step = step,
                    .target = "/dev/shm",
                    .point = Point::InNewTmpfs,
                    .flags = MS_NOSUID | MS_NODEV,
                    .data = "mode=1777,size=65536k"});
    for (auto [link, text] : {std::pair{"ptmx", "pts/ptmx"},
                              {"fd", "/proc/self/fd"},
                              {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"},
                              {"stderr", "/proc/self/fd/2"}})
        plan.push_back({.kind = Kind::Symlink,
                        .step = step,
                        .source = text,
                        .target = std::string("/dev/") + link,
                        .point = Point::InNewTmpfs});
}

std::string flagsText(unsigned long flags)
{
    std::vector<std::string> words;
    for (auto [flag, word] :
         {std::pair{MS_NOSUID, "nosuid"}, {MS_NODEV, "nodev"}, {MS_NOEXEC, "noexec"}})
        if (flags & flag) words.push_back(word);
    return join(words, ",");
}

std::string pointText(const MountOp& op)
{
    switch (op.point) {
    case Point::Dir:
        return "";
    case Point::File:
        return " (file)";
    case Point::LikeSource:
        return " (as the source)";
    case Point::InNewTmpfs:
        return " (in the new tmpfs)";
    }
    return "";
}

} // namespace

std::string overlayOptions(const SandboxSpec& spec)
{
    std::vector<std::string> lowers;
    for (auto& l : spec.lowerDirs)
        lowers.push_back(l.string());
    // userxattr: in a user namespace overlay keeps its whiteout and opaque marks in user.*.
    return concat("lowerdir=", join(lowers, ":"), ",upperdir=", (spec.runDir / "upper").string(),
                  ",workdir=", (spec.runDir / "work").string(), ",userxattr");
}

MountPlan planMounts(const SandboxSpec& spec)
{
    MountPlan plan;
    plan.push_back({.kind = Kind::MakePrivate, .step = "making the mounts private", .target = "/"});
    plan.push_back({.kind = Kind::Root, .target = "/", .data = overlayOptions(spec)});
    plan.push_back({.kind = Kind::Proc,
                    .step = "mounting /proc",
                    .target = "/proc",
                    .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    planDev(plan);
    plan.push_back({.kind = Kind::Tmpfs,
                    .step = "mounting /tmp",
                    .target = "/tmp",
                    .flags = MS_NOSUID | MS_NODEV,
                    .data = "mode=1777"});
    // The host's resolver: the sandbox shares its network.
    if (spec.hostNetwork)
        for (const char* f : {"/etc/resolv.conf", "/etc/hosts"})
            plan.push_back({.kind = Kind::Bind,
                            .step = concat("mounting ", f),
                            .source = f,
                            .target = f,
                            .point = Point::File,
                            .readOnly = true,
                            .ifSourceExists = true});
    for (auto& v : spec.volumes)
        plan.push_back(
            {.kind = Kind::Bind,
             .step = concat("mounting volume '", v.host.string(), "' on '", v.container, "'"),
             .source = v.host.string(),
             .target = v.container,
             .point = Point::LikeSource,
             .recursive = true,
             .readOnly = v.readOnly});
    plan.push_back(
        {.kind = Kind::PivotRoot, .step = "entering the root (pivot_root)", .target = "/"});
    return plan;
}

std::string describe(const MountOp& op)
{
    auto flags = flagsText(op.flags);
    auto options = concat(op.data.empty() ? "" : " " + op.data, flags.empty() ? "" : " " + flags);
    switch (op.kind) {
    case Kind::MakePrivate:
        return "make-private " + op.target;
    case Kind::Root:
        return "root overlay " + op.data + " or a copy";
    case Kind::Proc:
        return concat("proc on ", op.target, options, pointText(op));
    case Kind::Tmpfs:
        return concat("tmpfs on ", op.target, options, pointText(op));
    case Kind::DevNode:
        return concat("dev-node ", op.source, " on ", op.target, pointText(op));
    case Kind::Mkdir:
        return concat("mkdir ", op.target, " 0", std::oct, op.mode, pointText(op));
    case Kind::Devpts:
        return concat("devpts on ", op.target, options, pointText(op));
    case Kind::Symlink:
        return concat("symlink ", op.target, " -> ", op.source, pointText(op));
    case Kind::Bind:
        return concat(op.readOnly ? "bind-ro " : "bind ", op.recursive ? "recursive " : "",
                      op.source, " on ", op.target, pointText(op),
                      op.ifSourceExists ? " if it exists" : "");
    case Kind::PivotRoot:
        return "pivot-root";
    }
    return "";
}

} // namespace grocker::sandbox
