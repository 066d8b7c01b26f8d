"""Joint sets: names, limbs (the skeleton the pose maps are drawn on) and left/right flip pairs."""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class JointSet:
    name: str
    joint_names: Tuple[str, ...]
    limbs: Tuple[Tuple[int, int], ...]
    flip_pairs: Tuple[Tuple[int, int], ...]

    @property
    def joint_num(self) -> int:
        return len(self.joint_names)

    @property
    def pose_channels(self) -> int:
        """Channels of the rendered pose maps: one heatmap per joint + (x, y) per limb."""
        return self.joint_num + 2 * len(self.limbs)


OPENPOSE_18 = JointSet(
    name="openpose18",
    joint_names=(
        "Nose", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow",
        "L_Wrist", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "R_Eye",
        "L_Eye", "R_Ear", "L_Ear",
    ),
    limbs=(
        (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
        (1, 11), (11, 12), (12, 13), (0, 14), (0, 15), (14, 16), (15, 17),
    ),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
)

NTU_25 = JointSet(
    name="ntu25",
    joint_names=(
        "Pelvis", "Spine_Mid", "Neck", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "L_Hand",
        "R_Shoulder", "R_Elbow", "R_Wrist", "R_Hand", "L_Hip", "L_Knee", "L_Ankle", "L_Foot",
        "R_Hip", "R_Knee", "R_Ankle", "R_Foot", "Spine_Shoulder", "L_Hand_Tip", "L_Thumb",
        "R_Hand_Tip", "R_Thumb",
    ),
    limbs=(
        (0, 1), (1, 2), (2, 3), (4, 20), (4, 5), (5, 6), (6, 7), (7, 21), (21, 22), (8, 20),
        (8, 9), (9, 10), (10, 11), (11, 23), (23, 24), (0, 12), (12, 13), (13, 14), (14, 15),
        (0, 16), (16, 17), (17, 18), (18, 19), (1, 20),
    ),
    flip_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19),
                (21, 23), (22, 24)),
)
